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
 * | A | date of birth with day and month sorted | + name group of the given name; + surname code; + ZIP; + sex and middle initial |
 * | B | name group + surname code | + birth year and month; + birth year and day; + month and day |
 * | C | SSN | (the SSN alone) |
 * | D | another person id | (the id alone) |
 * | E | the phonetic codes of both names, sorted | + birth year; + postal code; (records without a date of birth) |
 *
 * Schemes D and E need no date of birth, and E's key is the same when the given name and the
 * surname are swapped. Two rules are restricted to pairs of which one record has no date of birth
 * (`withoutDob`); they come last.
 *
 * A pair is scored once, under the first rule that produces it: a later rule skips a pair whose
 * records share an earlier rule's key.
 */
import { DOB, FIRST, ID, LAST, MIDDLE, SEX, SSN, ZIP } from './comparisons';
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
/** Every scheme, in bit order. */
export const SCHEMES = [SCHEME_A, SCHEME_B, SCHEME_C, SCHEME_D, SCHEME_E] as const;

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
];

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

/** The blocking components of a normalised identity (stored with the record: see RecordBatch). */
export function blockingComponentsOf(identity: NormalisedIdentity): BlockingComponents {
  const { year, month, day, first, last } = identity;
  return {
    dob: year ? year * 10_000 + min(month, day) * 100 + max(month, day) : 0,
    firstGroup: first ? hashString(nameGroup(first)) : 0,
    lastCode: last ? hashString(lastNameCode(last)) : 0,
    firstCode: first ? hashString(nameCode(first)) : 0,
    idNumber: identity.idNumber ? hashString(identity.idNumber) : 0,
  };
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

/** The partition key of each scheme for a record (NaN where the scheme does not apply). */
export function schemeKeys(batch: RecordBatch, i: number) {
  return {
    a: mixKey(batch.dobKey[i]),
    b: mixKey(batch.groupHash[i], batch.codeHash[i]),
    c: batch.ssn[i] ? mixKey(batch.ssn[i], 7) : NaN,
    d: mixKey(batch.idHash[i], 11),
    e: mixKey(...sortedCodes(batch, i), 13),
  };
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
}

export function ruleKeys(batch: RecordBatch): RuleKeys[] {
  const n = batch.size;
  // Rules 0-3 share their first word (the date of birth), rules 4-6 and 11 theirs (the name
  // group), rules 9, 10 and 12 theirs (the smaller name code).
  const dobWord = new Uint32Array(n);
  const groupWord = new Uint32Array(n);
  const sortedWord = new Uint32Array(n);
  const keys: RuleKeys[] = BLOCKING_RULES.map((_, r) => ({
    hi:
      r < 4
        ? dobWord
        : r < 7 || r === 11
          ? groupWord
          : r === 9 || r === 10 || r === 12
            ? sortedWord
            : new Uint32Array(n),
    lo: new Uint32Array(n),
    has: new Uint8Array(n),
  }));
  const { dobKey, groupHash, codeHash, firstCode, idHash, zip, sex, middleInitial, year, month, day, ssn } =
    batch;
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
  }
  return keys;
}

/** Whether records i and j share rule r's key. */
export function sameKey(key: RuleKeys, i: number, j: number): boolean {
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
