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
 * | B | name group + surname code | + birth year; + month and day of birth |
 * | C | SSN | (the SSN alone) |
 *
 * A pair is scored once, under the first rule that produces it: a later rule skips a pair whose
 * records share an earlier rule's key.
 */
import { DOB, FIRST, LAST, MIDDLE, SEX, SSN, ZIP } from './comparisons';
import { nameGroup } from './nicknames';
import { nysiis } from './phonetic';
import type { RecordBatch } from './record-batch';

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { imul, max, min } = Math;

/** The blocking schemes, as bits of a record's partition mask. */
export const SCHEME_A = 1;
export const SCHEME_B = 2;
export const SCHEME_C = 4;

/**
 * One blocking rule: its name (for statistics), its scheme, and the comparisons its key makes its
 * pairs agree on (so EM on its pairs learns nothing about them: see model.ts).
 */
export interface BlockingRule {
  name: string;
  scheme: number;
  blocksOn: readonly number[];
}

/** The rules in the order they claim pairs. */
export const BLOCKING_RULES: readonly BlockingRule[] = [
  { name: 'dob+first_name_group', scheme: SCHEME_A, blocksOn: [DOB, FIRST] },
  { name: 'dob+last_name_code', scheme: SCHEME_A, blocksOn: [DOB, LAST] },
  { name: 'dob+zip', scheme: SCHEME_A, blocksOn: [DOB, ZIP] },
  { name: 'dob+sex+middle_initial', scheme: SCHEME_A, blocksOn: [DOB, SEX, MIDDLE] },
  { name: 'names+birth_year', scheme: SCHEME_B, blocksOn: [FIRST, LAST, DOB] },
  { name: 'names+birth_month_day', scheme: SCHEME_B, blocksOn: [FIRST, LAST, DOB] },
  { name: 'ssn', scheme: SCHEME_C, blocksOn: [SSN] },
];

/** The components blocking keys are made of, per record; 0 for missing. */
export interface BlockingComponents {
  /** Year·10⁴ + smaller of (month, day)·10² + larger: the same for a date and its day/month swap. */
  dob: number;
  firstGroup: number;
  lastCode: number;
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

/** The blocking components of a record. */
export function blockingComponents(batch: RecordBatch, i: number): BlockingComponents {
  const m = batch.month[i];
  const d = batch.day[i];
  const y = batch.year[i];
  const dob = y ? y * 10_000 + min(m, d) * 100 + max(m, d) : 0;
  const first = batch.first[i];
  const last = batch.last[i];
  return {
    dob,
    firstGroup: first ? hashString(nameGroup(first)) : 0,
    lastCode: last ? hashString(lastNameCode(last)) : 0,
  };
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
export function schemeKeys(batch: RecordBatch, i: number, c = blockingComponents(batch, i)) {
  return {
    a: mixKey(c.dob),
    b: mixKey(c.firstGroup, c.lastCode),
    c: batch.ssn[i] ? mixKey(batch.ssn[i], 7) : NaN,
  };
}

/** The partition (0 … partitions-1) of a partition key. */
export function partitionOf(key: number, partitions: number): number {
  return key % partitions;
}

/**
 * Every rule's key for every record of a batch: `keys[r][i]` is rule r's key of record i, NaN
 * where the record lacks a component of the rule.
 */
export function ruleKeys(batch: RecordBatch): Float64Array[] {
  const n = batch.size;
  const keys = BLOCKING_RULES.map(() => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    const c = blockingComponents(batch, i);
    keys[0][i] = mixKey(c.dob, c.firstGroup, 1);
    keys[1][i] = mixKey(c.dob, c.lastCode, 2);
    keys[2][i] = mixKey(c.dob, batch.zip[i], 3);
    keys[3][i] = mixKey(c.dob, batch.sex[i], batch.middleInitial[i], 4);
    keys[4][i] = mixKey(c.firstGroup, c.lastCode, batch.year[i], 5);
    const md = batch.month[i] ? batch.month[i] * 100 + batch.day[i] : 0;
    keys[5][i] = mixKey(c.firstGroup, c.lastCode, md, 6);
    keys[6][i] = batch.ssn[i] ? mixKey(batch.ssn[i], 7) : NaN;
  }
  return keys;
}
