import { ruleKeys } from './blocking';
import { PairCache } from './hash-tables';
import { jaroWinkler } from './jaro-winkler';
import { nameGroup } from './nicknames';
import type { RecordBatch } from './record-batch';

/** Jaro-Winkler thresholds of the name levels. */
export const JW_HIGH = 0.92;
export const JW_LOW = 0.85;

/**
 * A {@link RecordBatch} ready to compare: names interned to small integers (equal names are equal
 * ids), name groups and hyphenated surname parts resolved once per distinct name, blocking keys
 * computed, and a cache of name-pair levels, since names repeat and Jaro-Winkler is the one
 * costly comparison.
 */
export class PreparedBatch {
  /** Interned given name, -1 when missing. */
  readonly firstId: Int32Array;
  /** Interned name group of the given name, -1 when missing. */
  readonly groupId: Int32Array;
  /** Interned surname, -1 when missing. */
  readonly lastId: Int32Array;
  /** Interned parts of a hyphenated surname (-1 when not hyphenated). */
  readonly lastPart1: Int32Array;
  readonly lastPart2: Int32Array;
  /** Distinct names by id (given names and surnames share one id space). */
  readonly names: string[] = [];
  /** Blocking keys per rule. */
  readonly keys: Float64Array[];
  private readonly ids = new Map<string, number>();
  private readonly levelCache = new PairCache(1 << 20);

  constructor(readonly batch: RecordBatch) {
    const n = batch.size;
    this.firstId = new Int32Array(n);
    this.groupId = new Int32Array(n);
    this.lastId = new Int32Array(n);
    this.lastPart1 = new Int32Array(n).fill(-1);
    this.lastPart2 = new Int32Array(n).fill(-1);
    const groupOf = new Map<number, number>();
    const partsOf = new Map<number, [number, number]>();
    for (let i = 0; i < n; i++) {
      const first = batch.first[i];
      if (first) {
        const id = this.intern(first);
        this.firstId[i] = id;
        let group = groupOf.get(id);
        if (group === undefined) {
          group = this.intern(nameGroup(first));
          groupOf.set(id, group);
        }
        this.groupId[i] = group;
      } else {
        this.firstId[i] = -1;
        this.groupId[i] = -1;
      }
      const last = batch.last[i];
      if (last) {
        const id = this.intern(last);
        this.lastId[i] = id;
        if (last.includes('-')) {
          let parts = partsOf.get(id);
          if (!parts) {
            const [a, b] = last.split('-');
            parts = [this.intern(a), this.intern(b ?? a)];
            partsOf.set(id, parts);
          }
          this.lastPart1[i] = parts[0];
          this.lastPart2[i] = parts[1];
        }
      } else {
        this.lastId[i] = -1;
      }
    }
    this.keys = ruleKeys(batch);
  }

  /** The id of a name in this batch, interning it on first sight. */
  intern(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }

  /** The id of a name, or -1 when the batch has not seen it. */
  idOf(name: string): number {
    return this.ids.get(name) ?? -1;
  }

  /**
   * The Jaro-Winkler level of two different names: `high` (≥ 0.92), `low` (≥ 0.85) or `other`,
   * as the offsets 0, 1, 2. Cached per unordered pair of ids.
   */
  similarityLevel(a: number, b: number): number {
    const x = a < b ? a : b;
    const y = a < b ? b : a;
    let level = this.levelCache.get(x, y);
    if (level < 0) {
      const s = jaroWinkler(this.names[x], this.names[y]);
      level = s >= JW_HIGH ? 0 : s >= JW_LOW ? 1 : 2;
      this.levelCache.set(x, y, level);
    }
    return level;
  }

  /** Given-name level of records i and j (see COMPARISONS). */
  firstLevel(i: number, j: number): number {
    const a = this.firstId[i];
    const b = this.firstId[j];
    if (a < 0 || b < 0) return 5;
    if (a === b) return 0;
    if (this.groupId[i] === this.groupId[j]) return 1;
    return 2 + this.similarityLevel(a, b);
  }

  /** Surname level of records i and j (see COMPARISONS). */
  lastLevel(i: number, j: number): number {
    const a = this.lastId[i];
    const b = this.lastId[j];
    if (a < 0 || b < 0) return 5;
    if (a === b) return 0;
    const a1 = this.lastPart1[i];
    const b1 = this.lastPart1[j];
    if (a1 >= 0 || b1 >= 0) {
      const a2 = this.lastPart2[i];
      const b2 = this.lastPart2[j];
      // One surname is a part of the other's hyphenated surname, or they share a part.
      if (
        a1 === b ||
        a2 === b ||
        b1 === a ||
        b2 === a ||
        (a1 >= 0 && b1 >= 0 && (a1 === b1 || a1 === b2 || a2 === b1 || a2 === b2))
      ) {
        return 1;
      }
    }
    const level = this.similarityLevel(a, b);
    return level === 2 ? 4 : 2 + level;
  }
}
