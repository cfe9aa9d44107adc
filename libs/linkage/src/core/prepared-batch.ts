import { type RuleKeys, ruleKeys } from './blocking';
import { textOneTypo } from './comparisons';
import { PairCache } from './hash-tables';
import { jaroWinkler } from './jaro-winkler';
import type { RecordBatch } from './record-batch';

// Read once, not looked up on the global object in hot loops.
const { imul, min } = Math;

/** The number of bits set in a 32-bit integer. */
function bitCount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return imul(x, 0x01010101) >>> 24;
}

/** Jaro-Winkler thresholds of the name levels. */
export const JW_HIGH = 0.92;
export const JW_LOW = 0.85;

/**
 * A {@link RecordBatch} ready to compare: names are the batch's dictionary ids (equal names are
 * equal ids; 0 is missing), hyphenated surname parts resolved once per distinct name, blocking
 * keys computed, and the name-pair levels cached, since names repeat and Jaro-Winkler is the one
 * costly comparison. Most pairs of different names are proven too far apart for either
 * Jaro-Winkler level by a bound on their common letters, without computing it.
 */
export class PreparedBatch {
  /** Given name id (0 when missing). */
  readonly firstId: Uint32Array;
  /** Surname id (0 when missing). */
  readonly lastId: Uint32Array;
  /** Per name id, the ids of its first two hyphen-separated parts (-1 when not hyphenated). */
  private readonly part1: Int32Array;
  private readonly part2: Int32Array;
  /** Distinct names by id: the batch's dictionary, then parts of hyphenated names. */
  readonly names: string[];
  /** Blocking keys per rule. */
  readonly keys: RuleKeys[];
  /** Per name id: its length, its first letter, and its letters sorted (when needed). */
  private readonly lengths: Uint16Array;
  private readonly firstLetter: Uint16Array;
  private readonly sorted: (Uint16Array | undefined)[];
  /** Per name id: a bit per distinct letter (a-z, then anything else in one bit). */
  private readonly letterSet: Uint32Array;
  private readonly levelCache = new PairCache(1 << 16);
  private readonly addressCache = new PairCache(1 << 12);
  private readonly cityCache = new PairCache(1 << 12);

  constructor(readonly batch: RecordBatch) {
    this.firstId = batch.firstName;
    this.lastId = batch.lastName;
    const names = [...batch.names];
    const dictionary = batch.names.length;
    const part1 = new Int32Array(dictionary).fill(-1);
    const part2 = new Int32Array(dictionary).fill(-1);
    let ids: Map<string, number> | null = null;
    const intern = (name: string) => {
      // The dictionary's index is built only when a hyphenated surname needs it.
      ids ??= new Map(batch.names.map((n, id) => [n, id]));
      let id = ids.get(name);
      if (id === undefined) {
        id = names.length;
        names.push(name);
        ids.set(name, id);
      }
      return id;
    };
    for (let id = 1; id < dictionary; id++) {
      const name = batch.names[id];
      if (!name.includes('-')) continue;
      const [a, b] = name.split('-');
      part1[id] = intern(a);
      part2[id] = intern(b ?? a);
    }
    this.names = names;
    this.part1 = part1;
    this.part2 = part2;
    this.lengths = new Uint16Array(names.length);
    this.firstLetter = new Uint16Array(names.length);
    this.letterSet = new Uint32Array(names.length);
    this.sorted = new Array<Uint16Array | undefined>(names.length);
    for (let id = 0; id < names.length; id++) {
      const name = names[id];
      let set = 0;
      for (let k = 0; k < name.length; k++) {
        const code = name.charCodeAt(k);
        set |= code >= 97 && code <= 122 ? 1 << (code - 97) : 1 << 26;
      }
      this.letterSet[id] = set >>> 0;
      this.lengths[id] = name.length;
      this.firstLetter[id] = name.length ? name.charCodeAt(0) : 0;
    }
    this.keys = ruleKeys(batch);
  }

  /** A name's letters, sorted (computed the first time a bound needs them). */
  private sortedLetters(id: number): Uint16Array {
    let letters = this.sorted[id];
    if (!letters) {
      const name = this.names[id];
      letters = new Uint16Array(name.length);
      for (let k = 0; k < name.length; k++) letters[k] = name.charCodeAt(k);
      letters.sort();
      this.sorted[id] = letters;
    }
    return letters;
  }

  /**
   * The Jaro-Winkler level of two different names: `high` (≥ 0.92), `low` (≥ 0.85) or `other`,
   * as the offsets 0, 1, 2.
   */
  similarityLevel(a: number, b: number): number {
    if (this.tooFarApart(a, b)) return 2;
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

  /**
   * Whether Jaro-Winkler is certainly below the low threshold. With M the letters the two names
   * have in common (as multisets), Jaro ≤ (M/la + M/lb + 1)/3 and Jaro-Winkler ≤ 0.4 + 0.6·Jaro
   * (= Jaro when the first letters differ), so JW < 0.85 when M/la + M/lb < 1.25 (1.55 when the
   * first letters differ).
   */
  private tooFarApart(a: number, b: number): boolean {
    const la = this.lengths[a];
    const lb = this.lengths[b];
    const sa = this.letterSet[a];
    const sb = this.letterSet[b];
    // First a cheap bound: each distinct letter of one name missing from the other costs at least
    // one of its letters, so M ≤ la − |A∖B| and M ≤ lb − |B∖A|.
    const quick = min(la - bitCount(sa & ~sb), lb - bitCount(sb & ~sa));
    const quickBound = quick / la + quick / lb;
    const differentStart = this.firstLetter[a] !== this.firstLetter[b];
    if (quickBound < 1.25 || (differentStart && quickBound < 1.55)) return true;
    // Then M itself, merging the sorted letters.
    const x = this.sortedLetters(a);
    const y = this.sortedLetters(b);
    let i = 0;
    let j = 0;
    let common = 0;
    while (i < la && j < lb) {
      if (x[i] === y[j]) {
        common++;
        i++;
        j++;
      } else if (x[i] < y[j]) i++;
      else j++;
    }
    const bound = common / la + common / lb;
    return bound < 1.25 || (differentStart && bound < 1.55);
  }

  /** Given-name level of records i and j (see COMPARISONS). */
  firstLevel(i: number, j: number): number {
    const a = this.firstId[i];
    const b = this.firstId[j];
    if (a === 0 || b === 0) return 5;
    if (a === b) return 0;
    // The name groups' hashes (computed when the records were normalised).
    if (this.batch.groupHash[i] === this.batch.groupHash[j]) return 1;
    return 2 + this.givenSimilarity(a, b);
  }

  /**
   * Two different given names: an initial against a name it begins (the lower Jaro-Winkler level:
   * an initial is weak evidence), or their Jaro-Winkler level (offsets 0, 1, 2).
   */
  private givenSimilarity(a: number, b: number): number {
    if (this.lengths[a] === 1 || this.lengths[b] === 1)
      return this.firstLetter[a] === this.firstLetter[b] ? 1 : 2;
    return this.similarityLevel(a, b);
  }

  /**
   * Both name levels of records i and j, packed as first · 8 + last (+ 64 when crosswise). When
   * neither name agrees as it stands, the names are also compared crosswise (i's given name with
   * j's surname and the reverse): a clerk who swapped them wrote the same person, so the crosswise
   * levels stand for the pair when they are closer. Which of the two crosswise comparisons is "the
   * given name" depends on which record's order is believed; the closer one takes the given name's
   * place, so that the pair (j, i) has the levels of (i, j). A record with one name is compared
   * crosswise too (a surname written as the given name): when its name is closer to the other
   * record's other name, that comparison stands, in the place of the name it matched.
   */
  nameLevels(i: number, j: number): number {
    const first = this.firstLevel(i, j);
    const last = this.lastLevel(i, j);
    if (first < 2 || last < 2) return first * 8 + last;
    if (first === 5 || last === 5) return this.oneNameLevels(i, j, first, last);
    const fi = this.firstId[i];
    const lj = this.lastId[j];
    const li = this.lastId[i];
    const fj = this.firstId[j];
    const crossA = fi === lj ? 0 : 2 + this.similarityLevel(fi, lj);
    const crossB = li === fj ? 0 : 2 + this.similarityLevel(li, fj);
    // A swap is believed when the names agree crosswise: one exactly, or both at a Jaro-Winkler
    // level. (One chance likeness crosswise between two random records' names is no swap; taken as
    // one, it made the given name's Jaro-Winkler levels common among random pairs, weakening them.)
    const low = crossA < crossB ? crossA : crossB;
    const high = crossA < crossB ? crossB : crossA;
    if (low + high >= first + last || (low !== 0 && high === 4)) return first * 8 + last;
    return 64 + low * 8 + high;
  }

  /**
   * Name levels when one record lacks a name and the names present disagree: its one name (x) is
   * compared with the other record's other name (y), and stands when closer.
   */
  private oneNameLevels(i: number, j: number, first: number, last: number): number {
    const straight = first * 8 + last;
    if (first === 5 && last === 5) return straight;
    const { firstId, lastId } = this;
    if (last === 5) {
      // A surname is missing: the given name of the record without one, against the other's surname.
      const [x, y] = lastId[i] === 0 ? [firstId[i], lastId[j]] : [firstId[j], lastId[i]];
      if (y === 0) return straight;
      const cross = x === y ? 0 : 2 + this.similarityLevel(x, y);
      return cross < first ? 64 + 5 * 8 + cross : straight;
    }
    // A given name is missing: the surname of the record without one, against the other's given name.
    const [x, y] = firstId[i] === 0 ? [lastId[i], firstId[j]] : [lastId[j], firstId[i]];
    if (y === 0) return straight;
    const cross = x === y ? 0 : 2 + this.similarityLevel(x, y);
    return cross < last ? 64 + cross * 8 + 5 : straight;
  }

  /** Level of two identifiers or postal codes (dictionary ids): 0 exact, 1 one typo, 2 different, 3 missing. */
  codeLevel(a: number, b: number): number {
    if (a === 0 || b === 0) return 3;
    if (a === b) return 0;
    const x = this.names[a];
    const y = this.names[b];
    return x.length >= 4 && y.length >= 4 && textOneTypo(x, y) ? 1 : 2;
  }

  /** Level of two street lines: 0 exact, 1 Jaro-Winkler ≥ 0.9, 2 different, 3 missing. */
  addressLevel(a: number, b: number): number {
    return this.textLevel(a, b, 0.9, this.addressCache);
  }

  /** Level of two cities: 0 exact, 1 Jaro-Winkler ≥ 0.88, 2 different, 3 missing. */
  cityLevel(a: number, b: number): number {
    return this.textLevel(a, b, 0.88, this.cityCache);
  }

  private textLevel(a: number, b: number, threshold: number, cache: PairCache): number {
    if (a === 0 || b === 0) return 3;
    if (a === b) return 0;
    const x = a < b ? a : b;
    const y = a < b ? b : a;
    let level = cache.get(x, y);
    if (level < 0) {
      level = jaroWinkler(this.names[x], this.names[y]) >= threshold ? 1 : 2;
      cache.set(x, y, level);
    }
    return level;
  }

  /** Surname level of records i and j (see COMPARISONS). */
  lastLevel(i: number, j: number): number {
    const a = this.lastId[i];
    const b = this.lastId[j];
    if (a === 0 || b === 0) return 5;
    if (a === b) return 0;
    const a1 = this.part1[a];
    const b1 = this.part1[b];
    if (a1 < 0 && b1 < 0) {
      // Neither is hyphenated (the common case).
      const level = this.similarityLevel(a, b);
      return level === 2 ? 4 : 2 + level;
    }
    const a2 = this.part2[a];
    const b2 = this.part2[b];
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
    const level = this.similarityLevel(a, b);
    return level === 2 ? 4 : 2 + level;
  }
}
