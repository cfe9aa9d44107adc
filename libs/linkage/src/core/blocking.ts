/**
 * Blocking: which pairs of records are compared at all. Comparing every pair of a million records
 * is half a trillion comparisons; blocking compares only pairs that agree on some *blocking key*,
 * and takes the union of several rules so that a pair missed by one (a married name, a nickname, a
 * swapped day and month) is found by another.
 *
 * Rules belong to three *schemes*, each with a partition key that every rule of the scheme
 * includes, so one partition holds every pair its rules can produce:
 *
 * | scheme | partition key | rules |
 * |---|---|---|
 * | A | date of birth with day and month sorted | + name group of the given name; + surname code; + ZIP; + sex and middle initial; + both initials, sorted |
 * | B | name group + surname code | + birth year and month; + birth year and day; + month and day |
 * | C | SSN | (the SSN alone) |
 * | D | another person id | (the id alone) |
 * | E | the phonetic codes of both names, sorted | + birth year; + postal code; (records without a date of birth) |
 * | F | the street line | + either initial |
 * | G | both initials, sorted | + the id or any one-character deletion of it |
 * | H | the house number | + the postal code or any one-character deletion of it |
 *
 * Schemes D to H need no date of birth, and the keys of E, F and G are the same when the given
 * name and the surname are swapped. Two rules are restricted to pairs of which one record has no
 * date of birth (`withoutDob`).
 *
 * The rules of F, G and H give a record several keys (`multiKey`), and pair two records that share
 * any one: F's keys are the street line with each initial, so a typo in one name's first letter
 * leaves the other; G's and H's are the id's (the postal code's) *deletion neighbourhood*, the
 * value and every value with one character dropped, which two values share when they are equal or
 * one substitution, adjacent transposition, insertion or deletion apart (and a few that are one
 * deletion and one insertion apart), as in FastSS and SymSpell. Each key of a record holds its scheme's partition
 * key (the street line, the initials, the house number), so a record still goes to one partition
 * per scheme.
 *
 * A pair is scored once, under the first rule that produces it: a later rule skips a pair whose
 * records share an earlier rule's key, and a multi-key rule takes a pair in the block of the
 * smallest key the two share.
 */
import { ADDRESS, DOB, FIRST, ID, LAST, MIDDLE, SEX, SSN, ZIP } from './comparisons';
import { nameGroup } from './nicknames';
import { nysiis } from './phonetic';
import type { NormalisedIdentity } from './normalise';
import type { RecordBatch } from './record-batch';

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { imul, max, min } = Math;

/** The blocking schemes, as bits of a record's partition mask. */
export const SCHEME_A = 1;
export const SCHEME_B = 2;
export const SCHEME_C = 4;
export const SCHEME_D = 8;
export const SCHEME_E = 16;
export const SCHEME_F = 32;
export const SCHEME_G = 64;
export const SCHEME_H = 128;
/** Every scheme, in bit order (a record's partition mask is one byte). */
export const SCHEMES = [
  SCHEME_A,
  SCHEME_B,
  SCHEME_C,
  SCHEME_D,
  SCHEME_E,
  SCHEME_F,
  SCHEME_G,
  SCHEME_H,
] as const;

/**
 * One blocking rule: its name (for statistics), its scheme, and the comparisons its key makes its
 * pairs agree on (so EM on its pairs learns nothing about them: see model.ts).
 */
export interface BlockingRule {
  name: string;
  scheme: number;
  blocksOn: readonly number[];
  /** Only pairs of which at least one record has no date of birth. */
  withoutDob?: boolean;
  /**
   * Only pairs whose names' codes differ in the order written, i.e. (the key holding both codes,
   * sorted) pairs whose given name and surname are swapped. Pairs of namesakes are the other
   * rules' (their dates say whether they are one person); on a million records of common names
   * they were 9 million pairs, of which none linked.
   */
  namesDiffer?: boolean;
  /**
   * Several keys per record (see {@link RuleKeys.many}); a pair sharing any one is the rule's.
   * These rules come after every rule of one key.
   */
  multiKey?: boolean;
}

/** The rules in the order they claim pairs. */
export const BLOCKING_RULES: readonly BlockingRule[] = [
  { name: 'dob+first_name_group', scheme: SCHEME_A, blocksOn: [DOB, FIRST] },
  { name: 'dob+last_name_code', scheme: SCHEME_A, blocksOn: [DOB, LAST] },
  { name: 'dob+zip', scheme: SCHEME_A, blocksOn: [DOB, ZIP] },
  { name: 'dob+sex+middle_initial', scheme: SCHEME_A, blocksOn: [DOB, SEX, MIDDLE] },
  { name: 'names+birth_year_month', scheme: SCHEME_B, blocksOn: [FIRST, LAST, DOB] },
  { name: 'names+birth_year_day', scheme: SCHEME_B, blocksOn: [FIRST, LAST, DOB] },
  { name: 'names+birth_month_day', scheme: SCHEME_B, blocksOn: [FIRST, LAST, DOB] },
  { name: 'ssn', scheme: SCHEME_C, blocksOn: [SSN] },
  { name: 'id_number', scheme: SCHEME_D, blocksOn: [ID] },
  // Names in either order, with a part of the record that is not the date of birth: a replaced
  // date with a mistyped name, or a swapped given name and surname.
  { name: 'sorted_name_codes+birth_year', scheme: SCHEME_E, blocksOn: [FIRST, LAST, DOB], namesDiffer: true },
  { name: 'sorted_name_codes+zip', scheme: SCHEME_E, blocksOn: [FIRST, LAST, ZIP], namesDiffer: true },
  // A record without a date of birth has no key above but the ids and the postal code: its names
  // alone pair it, with records that have one or not (pairs of two dated records are the rules
  // above's).
  { name: 'names+no_dob', scheme: SCHEME_B, blocksOn: [FIRST, LAST], withoutDob: true },
  { name: 'sorted_name_codes+no_dob', scheme: SCHEME_E, blocksOn: [FIRST, LAST], withoutDob: true },
  // Both names mistyped or swapped, the date of birth right: a typo past the first letter keeps
  // the initials (Christen, "Data Matching", §4.3: blocking on a date and initials).
  { name: 'dob+sorted_initials', scheme: SCHEME_A, blocksOn: [DOB, FIRST, LAST] },
  // The rest need no date of birth and no name spelt right. One dwelling: the street line with
  // either initial (the initial keeps two households of one building apart, and one name may be
  // mistyped or both swapped); the postal code, or the postal code one typo away, with the house
  // number (the street line may be abbreviated or mistyped).
  { name: 'address+any_initial', scheme: SCHEME_F, blocksOn: [ADDRESS, FIRST, LAST], multiKey: true },
  { name: 'zip_one_typo+house_number', scheme: SCHEME_H, blocksOn: [ZIP, ADDRESS], multiKey: true },
  // The id one typo away, with the initials: in a dense id space every id has neighbours one
  // typo away, and the initials keep them from pairing.
  { name: 'id_one_typo+sorted_initials', scheme: SCHEME_G, blocksOn: [ID, FIRST, LAST], multiKey: true },
];

/**
 * Rules that EM also learns m from, under which nothing is scored (Splink's training blocking
 * rules). Names and postal code, without the date of birth: its pairs are one person's records
 * whatever their dates, and namesakes of one postal code, so the date of birth's m (how often a
 * match's dates differ, by a typo or outright) is learned from matches of every kind; without it,
 * only the pairs of the SSN and id rules teach it, the records of those who have an SSN or id.
 * Scored, it would pair every namesake of a US ZIP code.
 */
export const TRAINING_RULES: readonly BlockingRule[] = [
  { name: 'names+zip', scheme: SCHEME_B, blocksOn: [FIRST, LAST, ZIP] },
];

/** Every rule EM learns from: the blocking rules, then the training rules. */
export const EM_RULES: readonly BlockingRule[] = [...BLOCKING_RULES, ...TRAINING_RULES];

/** The first multi-key rule: every rule from here on has several keys per record. */
export const FIRST_MULTI_KEY_RULE = BLOCKING_RULES.findIndex((rule) => rule.multiKey === true);
if (
  BLOCKING_RULES.slice(FIRST_MULTI_KEY_RULE).some(
    (rule) => !rule.multiKey || rule.withoutDob || rule.namesDiffer,
  )
)
  throw new Error('multi-key blocking rules come last, and take every pair they produce');

/** The components blocking keys are made of, per record; 0 for missing. */
export interface BlockingComponents {
  /** Year·10⁴ + smaller of (month, day)·10² + larger: the same for a date and its day/month swap. */
  dob: number;
  firstGroup: number;
  lastCode: number;
  /** The phonetic code of the given name. */
  firstCode: number;
  /** A hash of the other person id. */
  idNumber: number;
  /** Both names' first letters, the smaller in the high byte (the same when the names are swapped). */
  initials: number;
  /** A hash of the street line's house number (its first run of digits). */
  house: number;
}

const STRING_HASHES = new Map<string, number>();

/** A 32-bit FNV-1a hash of a string, never 0 (0 means missing). */
export function hashString(value: string): number {
  let h = STRING_HASHES.get(value);
  if (h !== undefined) return h;
  h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = imul(h, 0x01000193);
  }
  h = h >>> 0 || 1;
  if (STRING_HASHES.size < 500_000) STRING_HASHES.set(value, h);
  return h;
}

/** The surname code used for blocking: NYSIIS of the first part of a hyphenated surname. */
export function lastNameCode(last: string): string {
  if (!last) return '';
  const dash = last.indexOf('-');
  return nysiis(dash < 0 ? last : last.slice(0, dash));
}

/** The phonetic code of any name (given name or surname: a swap must not change it). */
export function nameCode(name: string): string {
  return lastNameCode(name);
}

/** Both names' first letters (folded names), the smaller in the high byte; 0 when either is missing. */
export function initialsOf(first: string, last: string): number {
  if (!first || !last) return 0;
  const a = first.charCodeAt(0) & 0xff;
  const b = last.charCodeAt(0) & 0xff;
  return a < b ? (a << 8) | b : (b << 8) | a;
}

/** The house number of a street line (its first run of digits, as text), '' when it has none. */
export function houseNumberOf(address: string): string {
  let start = -1;
  for (let k = 0; k < address.length; k++) {
    const c = address.charCodeAt(k);
    const digit = c >= 48 && c <= 57;
    if (digit && start < 0) start = k;
    else if (!digit && start >= 0) return address.slice(start, k);
  }
  return start < 0 ? '' : address.slice(start);
}

/** Identifiers and postal codes shorter than this have no one-typo key (nor one-typo level). */
export const MIN_TYPO_LENGTH = 4;
/** Only the first this many characters of a longer identifier make its deletion neighbourhood. */
const MAX_TYPO_LENGTH = 24;

/**
 * The deletion neighbourhood of an identifier: the value itself and every value with one
 * character dropped, each once. Two values share one when they are equal, or one substitution,
 * adjacent transposition, insertion or deletion apart (every such pair), or one character dropped
 * in one place and another added elsewhere. Empty for values shorter than {@link MIN_TYPO_LENGTH}.
 */
export function deletionNeighbourhood(value: string): string[] {
  if (value.length < MIN_TYPO_LENGTH) return [];
  const text = value.length > MAX_TYPO_LENGTH ? value.slice(0, MAX_TYPO_LENGTH) : value;
  const out = [text];
  for (let k = 0; k < text.length; k++) {
    // A run of equal characters gives one variant, however many of them are dropped.
    if (k > 0 && text.charCodeAt(k) === text.charCodeAt(k - 1)) continue;
    out.push(text.slice(0, k) + text.slice(k + 1));
  }
  return out;
}

/** The blocking components of a normalised identity (stored with the record: see RecordBatch). */
export function blockingComponentsOf(identity: NormalisedIdentity): BlockingComponents {
  const { year, month, day, first, last } = identity;
  return {
    dob: year ? year * 10_000 + min(month, day) * 100 + max(month, day) : 0,
    firstGroup: first ? hashString(nameGroup(first)) : 0,
    lastCode: last ? hashString(lastNameCode(last)) : 0,
    firstCode: first ? hashString(nameCode(first)) : 0,
    idNumber: identity.idNumber ? hashString(identity.idNumber) : 0,
    initials: initialsOf(first, last),
    house: houseHash(identity.address),
  };
}

/** A hash of a street line's house number, 0 when it has none. */
export function houseHash(address: string): number {
  const house = houseNumberOf(address);
  return house ? hashString(house) : 0;
}

/** Whether a record has either initial (a key of the street-line rule needs one). */
function anyInitial(batch: RecordBatch, i: number): boolean {
  return batch.firstName[i] !== 0 || batch.lastName[i] !== 0;
}

/** Whether an identifier (a dictionary id of the batch) is long enough for a one-typo key. */
function typoKeyed(batch: RecordBatch, id: number): boolean {
  return id !== 0 && batch.names[id].length >= MIN_TYPO_LENGTH;
}

/** The key of scheme E: both names' codes, the smaller first, so that a swap keeps it. */
function sortedCodes(batch: RecordBatch, i: number): [number, number] {
  const a = batch.firstCode[i];
  const b = batch.codeHash[i];
  return a < b ? [a, b] : [b, a];
}

/**
 * Mixes components into a key below 2^52 (exact in a double), or NaN when any is missing: NaN
 * equals nothing, not even itself, so a missing key never blocks two records together.
 */
export function mixKey(a: number, b = 1, c = 1, d = 1): number {
  if (a === 0 || b === 0 || c === 0 || d === 0) return NaN;
  let h1 = 0x9e3779b1;
  let h2 = 0x85ebca77;
  h1 = mixStep(h1, a, 0xcc9e2d51);
  h2 = mixStep(h2, a, 0x27d4eb2f);
  h1 = mixStep(h1, b, 0xcc9e2d51);
  h2 = mixStep(h2, b, 0x27d4eb2f);
  h1 = mixStep(h1, c, 0xcc9e2d51);
  h2 = mixStep(h2, c, 0x27d4eb2f);
  h1 = mixStep(h1, d, 0xcc9e2d51);
  h2 = mixStep(h2, d, 0x27d4eb2f);
  h1 ^= h1 >>> 16;
  h1 = imul(h1, 0x85ebca6b);
  h1 ^= h1 >>> 13;
  h2 ^= h2 >>> 15;
  h2 = imul(h2, 0xc2b2ae35);
  h2 ^= h2 >>> 16;
  return (h1 >>> 0) * 1048576 + ((h2 >>> 0) & 0xfffff);
}

/** One round of mixing a non-negative integer below 2^53 into a 32-bit state. */
function mixStep(h: number, x: number, multiplier: number): number {
  const lo = x >>> 0;
  const hi = (x / 4294967296) >>> 0;
  h = imul(h ^ lo, multiplier);
  h = imul((h << 15) | (h >>> 17), 0x1b873593);
  return imul(h ^ hi, 0x9e3779b1) ^ (h >>> 11);
}

/**
 * The partition key of each scheme for a record, in {@link SCHEMES} order (NaN where the scheme
 * does not apply). A record has a multi-key scheme's partition key exactly when it has at least one
 * key of that scheme's rule, so that two records sharing a key meet in one partition.
 */
export function schemeKeys(batch: RecordBatch, i: number): number[] {
  const address = batch.address[i];
  return [
    mixKey(batch.dobKey[i]),
    mixKey(batch.groupHash[i], batch.codeHash[i]),
    batch.ssn[i] ? mixKey(batch.ssn[i], 7) : NaN,
    mixKey(batch.idHash[i], 11),
    mixKey(...sortedCodes(batch, i), 13),
    address !== 0 && anyInitial(batch, i) ? mixKey(hashString(batch.names[address]), 17) : NaN,
    typoKeyed(batch, batch.idNumber[i]) ? mixKey(batch.initials[i], 19) : NaN,
    typoKeyed(batch, batch.zip[i]) ? mixKey(batch.house[i], 23) : NaN,
  ];
}

/** The partition (0 … partitions-1) of a partition key. */
export function partitionOf(key: number, partitions: number): number {
  return key % partitions;
}

/**
 * Every rule's key for every record of a batch, as two 32-bit words (`hi`, `lo`) and whether the
 * record has the key at all (`has`: every component present). Keys are the components themselves
 * where they fit (date of birth and a name code are one word each); where a rule has three
 * components two share a word, mixed, so unequal components rarely (and only ever harmlessly: one
 * more pair compared) share a key. Blocking and the "claimed by an earlier rule" test read these.
 */
export interface RuleKeys {
  hi: Uint32Array;
  lo: Uint32Array;
  has: Uint8Array;
  /**
   * A multi-key rule's keys (its `has` is all 0): record i's are entries `start[i]` to
   * `start[i + 1] - 1` of `hi` and `lo`, ascending by (hi, lo), each once.
   */
  many?: { start: Uint32Array; hi: Uint32Array; lo: Uint32Array };
}

/** Every rule's keys ({@link EM_RULES} order: the training rules' after the blocking rules'). */
export function ruleKeys(batch: RecordBatch): RuleKeys[] {
  const n = batch.size;
  // Rules 0-3 and 13 share their first word (the date of birth), rules 4-6 and 11 theirs (the name
  // group), rules 9, 10 and 12 theirs (the smaller name code); multi-key rules have none (`many`).
  const dobWord = new Uint32Array(n);
  const groupWord = new Uint32Array(n);
  const sortedWord = new Uint32Array(n);
  const keys: RuleKeys[] = EM_RULES.map((_, r) => ({
    hi:
      r < 4 || r === 13
        ? dobWord
        : r < 7 || r === 11 || r === TRAINING_NAMES_ZIP
          ? groupWord
          : r === 9 || r === 10 || r === 12
            ? sortedWord
            : new Uint32Array(n),
    lo: new Uint32Array(n),
    has: new Uint8Array(n),
  }));
  const {
    dobKey,
    groupHash,
    codeHash,
    firstCode,
    idHash,
    zip,
    sex,
    middleInitial,
    year,
    month,
    day,
    ssn,
    initials,
  } = batch;
  const los = keys.map((k) => k.lo);
  const hass = keys.map((k) => k.has);
  const ssnWord = keys[7].hi;
  const idWord = keys[8].hi;
  // Every rule's key is computed for every record, whichever schemes brought it here: a pair is
  // claimed by an earlier rule (and scored in that rule's partition) whenever it shares its key.
  for (let i = 0; i < n; i++) {
    const dob = dobKey[i];
    const group = groupHash[i];
    const code = codeHash[i];
    if (dob !== 0) {
      // Rules 0-3: the date of birth and one more component.
      dobWord[i] = dob;
      los[0][i] = group;
      hass[0][i] = group !== 0 ? 1 : 0;
      los[1][i] = code;
      hass[1][i] = code !== 0 ? 1 : 0;
      los[2][i] = zip[i];
      hass[2][i] = zip[i] !== 0 ? 1 : 0;
      los[3][i] = (sex[i] << 8) | middleInitial[i];
      hass[3][i] = sex[i] !== 0 && middleInitial[i] !== 0 ? 1 : 0;
    }
    if (group !== 0 && code !== 0) {
      // Rule 11: the names alone (pairs restricted to records without a date of birth).
      groupWord[i] = group;
      los[11][i] = code;
      hass[11][i] = 1;
      if (zip[i] !== 0) {
        // The training rule: the names and the postal code.
        los[TRAINING_NAMES_ZIP][i] = (imul(code, 0x2545f491) ^ imul(zip[i], 0x9e3779b1)) >>> 0;
        hass[TRAINING_NAMES_ZIP][i] = 1;
      }
    }
    if (group !== 0 && code !== 0 && year[i] !== 0) {
      // Rules 4-6: the names and two parts of the date.
      los[4][i] = (imul(code, 0x9e3779b1) ^ (year[i] * 100 + month[i])) >>> 0;
      los[5][i] = (imul(code, 0x85ebca6b) ^ (year[i] * 100 + day[i])) >>> 0;
      los[6][i] = (imul(code, 0xc2b2ae35) ^ (month[i] * 100 + day[i])) >>> 0;
      hass[4][i] = hass[5][i] = hass[6][i] = 1;
    }
    if (ssn[i] !== 0) {
      ssnWord[i] = ssn[i];
      hass[7][i] = 1;
    }
    if (idHash[i] !== 0) {
      idWord[i] = idHash[i];
      hass[8][i] = 1;
    }
    const fc = firstCode[i];
    if (fc !== 0 && code !== 0) {
      const low = fc < code ? fc : code;
      const high = fc < code ? code : fc;
      sortedWord[i] = low;
      los[12][i] = high;
      hass[12][i] = 1;
      if (year[i] !== 0) {
        los[9][i] = (imul(high, 0x27d4eb2f) ^ year[i]) >>> 0;
        hass[9][i] = 1;
      }
      if (zip[i] !== 0) {
        los[10][i] = (imul(high, 0x165667b1) ^ imul(zip[i], 0x9e3779b1)) >>> 0;
        hass[10][i] = 1;
      }
    }
    if (dob !== 0 && initials[i] !== 0) {
      // Rule 13: the date of birth and both initials.
      los[13][i] = initials[i];
      hass[13][i] = 1;
    }
  }
  for (let r = FIRST_MULTI_KEY_RULE; r < BLOCKING_RULES.length; r++) keys[r].many = manyKeys(batch, r);
  return keys;
}

/** The index among {@link EM_RULES} of the training rule on names and postal code. */
const TRAINING_NAMES_ZIP = BLOCKING_RULES.length;

/** Deletion neighbourhoods of a batch's identifiers, hashed, computed once per distinct value. */
class Neighbourhoods {
  private readonly cache = new Map<number, Uint32Array>();
  constructor(private readonly names: readonly string[]) {}

  of(id: number): Uint32Array {
    let hashes = this.cache.get(id);
    if (!hashes) {
      hashes = Uint32Array.from(deletionNeighbourhood(this.names[id]), hashText);
      this.cache.set(id, hashes);
    }
    return hashes;
  }
}

/** The keys of multi-key rule r for every record of a batch (see {@link RuleKeys.many}). */
function manyKeys(batch: RecordBatch, r: number): NonNullable<RuleKeys['many']> {
  const n = batch.size;
  const { address, firstName, lastName, zip, house, idNumber, initials, names } = batch;
  const rule = BLOCKING_RULES[r].name;
  const kind =
    rule === 'address+any_initial'
      ? 0
      : rule === 'zip_one_typo+house_number'
        ? 1
        : rule === 'id_one_typo+sorted_initials'
          ? 2
          : -1;
  if (kind < 0) throw new Error(`no keys for blocking rule ${rule}`);
  // Which records have keys at all (none, in a batch without street lines or ids: skip the rest).
  const keyed = new Uint8Array(n);
  let keyedCount = 0;
  for (let i = 0; i < n; i++) {
    const has =
      kind === 0
        ? address[i] !== 0 && (firstName[i] !== 0 || lastName[i] !== 0)
        : kind === 1
          ? house[i] !== 0 && typoKeyed(batch, zip[i])
          : initials[i] !== 0 && typoKeyed(batch, idNumber[i]);
    if (has) {
      keyed[i] = 1;
      keyedCount++;
    }
  }
  const start = new Uint32Array(n + 1);
  if (keyedCount === 0) return { start, hi: new Uint32Array(0), lo: new Uint32Array(0) };
  const neighbourhoods = new Neighbourhoods(names);
  const entryHi = new Uint32Array(MAX_TYPO_LENGTH + 1);
  const entryLo = new Uint32Array(MAX_TYPO_LENGTH + 1);
  let hi = new Uint32Array(keyedCount * 2 + 16);
  let lo = new Uint32Array(keyedCount * 2 + 16);
  let size = 0;
  for (let i = 0; i < n; i++) {
    start[i] = size;
    if (keyed[i] === 0) continue;
    let entries = 0;
    if (kind === 0) {
      for (const name of [firstName[i], lastName[i]]) {
        if (name === 0) continue;
        entryHi[entries] = address[i];
        entryLo[entries++] = names[name].charCodeAt(0);
      }
    } else {
      const variants = neighbourhoods.of(kind === 1 ? zip[i] : idNumber[i]);
      const second = kind === 1 ? house[i] : initials[i];
      for (let v = 0; v < variants.length; v++) {
        entryHi[entries] = variants[v];
        entryLo[entries++] = second;
      }
    }
    if (size + entries > hi.length) {
      hi = grow(hi, size + entries);
      lo = grow(lo, size + entries);
    }
    // Ascending by (hi, lo), each key once (an insertion sort: a record has a few keys).
    const from = size;
    for (let e = 0; e < entries; e++) {
      const h = entryHi[e];
      const l = entryLo[e];
      let at = size;
      while (at > from && (hi[at - 1] > h || (hi[at - 1] === h && lo[at - 1] > l))) at--;
      if (at > from && hi[at - 1] === h && lo[at - 1] === l) continue;
      hi.copyWithin(at + 1, at, size);
      lo.copyWithin(at + 1, at, size);
      hi[at] = h;
      lo[at] = l;
      size++;
    }
  }
  start[n] = size;
  return { start, hi: hi.slice(0, size), lo: lo.slice(0, size) };
}

function grow(array: Uint32Array<ArrayBuffer>, needed: number): Uint32Array<ArrayBuffer> {
  const bigger = new Uint32Array(Math.max(needed, array.length * 2));
  bigger.set(array);
  return bigger;
}

/** A 32-bit FNV-1a hash of a string, never 0, not cached (deletion variants are many and used once). */
function hashText(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = imul(h, 0x01000193);
  }
  return h >>> 0 || 1;
}

/**
 * The smallest key records i and j share under a multi-key rule, as its entry index among i's
 * keys, or -1: both key lists are ascending, so one merge finds it.
 */
export function firstSharedKey(many: NonNullable<RuleKeys['many']>, i: number, j: number): number {
  const { start, hi, lo } = many;
  let a = start[i];
  let b = start[j];
  const endA = start[i + 1];
  const endB = start[j + 1];
  while (a < endA && b < endB) {
    if (hi[a] === hi[b] && lo[a] === lo[b]) return a;
    if (hi[a] < hi[b] || (hi[a] === hi[b] && lo[a] < lo[b])) a++;
    else b++;
  }
  return -1;
}

/** Whether records i and j share rule r's key (any of them, for a multi-key rule). */
export function sameKey(key: RuleKeys, i: number, j: number): boolean {
  if (key.many) return firstSharedKey(key.many, i, j) >= 0;
  return key.has[i] === 1 && key.has[j] === 1 && key.hi[i] === key.hi[j] && key.lo[i] === key.lo[j];
}

/** Whether rule `r` takes the pair (i, j) of one of its blocks (see `withoutDob` and `namesDiffer`). */
export function ruleTakes(r: number, batch: RecordBatch, i: number, j: number): boolean {
  const rule = BLOCKING_RULES[r];
  if (rule.withoutDob && batch.year[i] !== 0 && batch.year[j] !== 0) return false;
  return (
    !rule.namesDiffer || batch.firstCode[i] !== batch.firstCode[j] || batch.codeHash[i] !== batch.codeHash[j]
  );
}

/**
 * Whether an earlier rule `k` produces the pair (i, j), so that a later rule leaves it: the two
 * share its key and the rule takes the pair.
 */
export function claimedBy(keys: readonly RuleKeys[], k: number, batch: RecordBatch, i: number, j: number) {
  return sameKey(keys[k], i, j) && ruleTakes(k, batch, i, j);
}
