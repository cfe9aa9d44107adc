/**
 * A small, fast, seeded pseudo-random generator (sfc32) and the integer hashing the scenario uses to
 * derive independent streams and scrambled identifiers. Nothing here touches Math.random, so the
 * same seed always yields the same county.
 */

/** Hashes a seed (number or text) to a 32-bit unsigned integer (FNV-1a over the text, then mixed). */
export function hashSeed(seed: number | string): number {
  const text = typeof seed === 'number' ? `n:${seed}` : `s:${seed}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h >>> 0);
}

/**
 * A bijective 32-bit mixer (lowbias32): distinct inputs give distinct outputs, so ids derived from
 * distinct counters never collide, yet they look random.
 */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** sfc32: 128 bits of state, passes PractRand far beyond what a synthetic county needs. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A generator for `seed`, optionally a sub-stream (`stream`) of it, e.g. one per person. */
  constructor(seed: number | string, stream = 0) {
    const base = hashSeed(seed);
    this.a = mix32(base ^ 0x9e3779b9);
    this.b = mix32((base + Math.imul(stream + 1, 0x85ebca6b)) >>> 0);
    this.c = mix32((stream ^ 0xc2b2ae35) >>> 0);
    this.d = 1;
    // The first outputs of sfc32 from related seeds are correlated; discard them.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** An exponentially distributed number with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** A Poisson-distributed count (Knuth's method; fine for the small means used here). */
  poisson(mean: number): number {
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.next();
    while (p > limit) {
      k++;
      p *= this.next();
    }
    return k;
  }
}

/**
 * A weighted choice among items, prepared once: cumulative weights and a binary search, so drawing
 * from a table of hundreds of names costs a few comparisons.
 */
export class WeightedTable<T> {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(
    readonly items: readonly T[],
    weights: readonly number[],
  ) {
    if (items.length === 0 || items.length !== weights.length)
      throw new Error('a weighted table needs one weight per item');
    this.cumulative = new Float64Array(items.length);
    let sum = 0;
    weights.forEach((w, i) => {
      sum += w;
      this.cumulative[i] = sum;
    });
    this.total = sum;
  }

  /** A table whose weights fall off like a Zipf law by rank: common names are much more common. */
  static zipf<T>(items: readonly T[], exponent = 0.9, offset = 2): WeightedTable<T> {
    return new WeightedTable(
      items,
      items.map((_, rank) => 1 / Math.pow(rank + offset, exponent)),
    );
  }

  /** Draws one item. */
  draw(random: SeededRandom): T {
    const target = random.next() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cumulative[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    return this.items[lo];
  }
}
