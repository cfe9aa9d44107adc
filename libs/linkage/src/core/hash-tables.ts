/**
 * Two open-addressing hash tables on typed arrays, for the scorer's hot loops: a JavaScript Map
 * keyed by numbers above 2^31 boxes every key, which cost more than the comparisons themselves.
 */

// Read once, not looked up on the global object in hot loops.
const { imul } = Math;

/** Maps blocking keys (two 32-bit words) to dense slot numbers 0, 1, 2, … in order of first sight. */
export class KeySlots {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private slot: Int32Array;
  private mask: number;
  /** Slots handed out so far. */
  size = 0;

  constructor(expected: number) {
    let capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.slot = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
  }

  /** Forgets every key (keeps the memory). */
  clear(): void {
    this.slot.fill(-1);
    this.size = 0;
  }

  /** The slot of the key (hi, lo), created when new. */
  slotOf(hi: number, lo: number): number {
    let h = spread(hi, lo) & this.mask;
    for (;;) {
      const at = this.slot[h];
      if (at < 0) {
        if (this.size * 2 >= this.mask) {
          this.grow();
          return this.slotOf(hi, lo);
        }
        this.hi[h] = hi;
        this.lo[h] = lo;
        this.slot[h] = this.size;
        return this.size++;
      }
      if (this.hi[h] === hi && this.lo[h] === lo) return at;
      h = (h + 1) & this.mask;
    }
  }

  private grow() {
    const { hi, lo, slot } = this;
    const capacity = slot.length * 2;
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.slot = new Int32Array(capacity).fill(-1);
    this.mask = capacity - 1;
    for (let i = 0; i < slot.length; i++) {
      if (slot[i] < 0) continue;
      let h = spread(hi[i], lo[i]) & this.mask;
      while (this.slot[h] >= 0) h = (h + 1) & this.mask;
      this.hi[h] = hi[i];
      this.lo[h] = lo[i];
      this.slot[h] = slot[i];
    }
  }
}

/** A 32-bit hash of two words, its bits spread so that any low bits serve as a table index. */
function spread(hi: number, lo: number): number {
  let h = imul(lo ^ imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  h = imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A bounded cache of small values (0-254) per unordered pair of ids below 2^31. When full it is
 * cleared and starts again: a cache, not a store.
 */
export class PairCache {
  private a: Int32Array;
  private b: Int32Array;
  private value: Uint8Array;
  private readonly mask: number;
  private used = 0;

  constructor(capacity = 1 << 20) {
    let size = 16;
    while (size < capacity) size *= 2;
    this.a = new Int32Array(size).fill(-1);
    this.b = new Int32Array(size);
    this.value = new Uint8Array(size);
    this.mask = size - 1;
  }

  /** The cached value of the pair, or -1. `x < y` is expected. */
  get(x: number, y: number): number {
    let h = this.hash(x, y);
    for (;;) {
      const at = this.a[h];
      if (at === -1) return -1;
      if (at === x && this.b[h] === y) return this.value[h];
      h = (h + 1) & this.mask;
    }
  }

  /** Caches a value for the pair (`x < y`). */
  set(x: number, y: number, value: number): void {
    if (this.used * 2 >= this.mask) {
      this.a.fill(-1);
      this.used = 0;
    }
    let h = this.hash(x, y);
    while (this.a[h] !== -1) {
      if (this.a[h] === x && this.b[h] === y) {
        this.value[h] = value;
        return;
      }
      h = (h + 1) & this.mask;
    }
    this.a[h] = x;
    this.b[h] = y;
    this.value[h] = value;
    this.used++;
  }

  private hash(x: number, y: number): number {
    return spread(x, y) & this.mask;
  }
}
