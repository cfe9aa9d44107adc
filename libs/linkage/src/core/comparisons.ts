/**
 * The comparisons of a record pair, each a small number of *levels* from agreement to
 * disagreement, plus "missing" (one side has no value: no evidence either way). A pair's
 * comparison vector, packed into one integer (its *pattern*), indexes a table of Fellegi-Sunter
 * weights.
 */

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { floor } = Math;

/** A comparison and its levels, most similar first. */
export interface Comparison {
  name: string;
  levels: readonly string[];
}

export const COMPARISONS: readonly Comparison[] = [
  {
    name: 'first_name',
    levels: ['exact', 'nickname', 'jaro_winkler_0.92', 'jaro_winkler_0.85', 'different'],
  },
  {
    name: 'last_name',
    levels: ['exact', 'hyphenated_part', 'jaro_winkler_0.92', 'jaro_winkler_0.85', 'different'],
  },
  { name: 'date_of_birth', levels: ['exact', 'day_month_swapped', 'one_typo', 'two_of_three', 'different'] },
  { name: 'ssn', levels: ['exact', 'one_typo', 'different'] },
  { name: 'sex', levels: ['agree', 'disagree'] },
  { name: 'zip', levels: ['exact', 'one_typo', 'different'] },
  { name: 'middle_initial', levels: ['agree', 'disagree'] },
  { name: 'id_number', levels: ['exact', 'one_typo', 'different'] },
  { name: 'address', levels: ['exact', 'jaro_winkler_0.9', 'different'] },
  { name: 'city', levels: ['exact', 'jaro_winkler_0.88', 'different'] },
];

/** Index of each comparison in {@link COMPARISONS}. */
export const FIRST = 0;
export const LAST = 1;
export const DOB = 2;
export const SSN = 3;
export const SEX = 4;
export const ZIP = 5;
export const MIDDLE = 6;
export const ID = 7;
export const ADDRESS = 8;
export const CITY = 9;

/** Levels per comparison, and the missing level (= the number of levels) after them. */
export const LEVELS = COMPARISONS.map((c) => c.levels.length);
/** The radix of each comparison in a pattern: its levels plus missing. */
export const RADIX = LEVELS.map((l) => l + 1);
/** How many patterns there are. */
export const PATTERNS = RADIX.reduce((a, b) => a * b, 1);

/** The place value of each comparison in a pattern: pattern = Σ level[c] · STRIDE[c]. */
export const STRIDE: readonly number[] = (() => {
  const stride = new Array<number>(RADIX.length);
  let s = 1;
  for (let c = RADIX.length - 1; c >= 0; c--) {
    stride[c] = s;
    s *= RADIX[c];
  }
  return stride;
})();

/** The level of each comparison in a pattern (missing = LEVELS[c]). */
export function decodePattern(pattern: number): number[] {
  return STRIDE.map((stride, c) => floor(pattern / stride) % RADIX[c]);
}

/** The pattern of a comparison vector. */
export function encodePattern(levels: readonly number[]): number {
  let pattern = 0;
  for (let c = 0; c < levels.length; c++) pattern += levels[c] * STRIDE[c];
  return pattern;
}

/**
 * Date of birth level: 0 exact, 1 day and month swapped, 2 one typo (the day or the month off by
 * one, or the year by one or ten, the rest equal; or one digit of YYYYMMDD keyed or read wrongly,
 * or two adjacent digits exchanged), 3 two of year/month/day equal, 4 different, 5 missing.
 */
export function dobLevel(y1: number, m1: number, d1: number, y2: number, m2: number, d2: number): number {
  if (y1 === 0 || y2 === 0) return 5;
  const ey = y1 === y2;
  const em = m1 === m2;
  const ed = d1 === d2;
  if (ey && em && ed) return 0;
  if (ey && m1 === d2 && d1 === m2) return 1;
  if (ey && em) return d1 - d2 === 1 || d2 - d1 === 1 || digitsOneTypo(d1, d2, 2) ? 2 : 3;
  if (ey && ed) return m1 - m2 === 1 || m2 - m1 === 1 || digitsOneTypo(m1, m2, 2) ? 2 : 3;
  if (em && ed) {
    const dy = y1 > y2 ? y1 - y2 : y2 - y1;
    return dy === 1 || dy === 10 || digitsOneTypo(y1, y2, 4) ? 2 : 3;
  }
  // Two adjacent digits exchanged across the month and the day ("1985-03-12" for "1985-01-32").
  return digitsOneTypo(y1 * 10_000 + m1 * 100 + d1, y2 * 10_000 + m2 * 100 + d2, 8) ? 2 : 4;
}

/**
 * Whether two different numbers of `digits` decimal digits are one typo apart: one digit changed,
 * or two adjacent digits exchanged.
 */
export function digitsOneTypo(a: number, b: number, digits: number): boolean {
  let diffs = 0;
  let pos = -1;
  let a1 = 0;
  let b1 = 0;
  let a2 = 0;
  let b2 = 0;
  let pos2 = -1;
  for (let i = 0; i < digits; i++) {
    const da = a % 10;
    const db = b % 10;
    a = (a - da) / 10;
    b = (b - db) / 10;
    if (da !== db) {
      diffs++;
      if (diffs > 2) return false;
      if (diffs === 1) {
        pos = i;
        a1 = da;
        b1 = db;
      } else {
        pos2 = i;
        a2 = da;
        b2 = db;
      }
    }
  }
  if (diffs === 1) return true;
  return diffs === 2 && pos2 === pos + 1 && a1 === b2 && a2 === b1;
}

/** Whether two different SSNs are one typo apart: one digit changed, or two adjacent digits swapped. */
export function ssnOneTypo(a: number, b: number): boolean {
  return digitsOneTypo(a, b, 9);
}

/**
 * Whether two different texts are one edit apart: a character changed (a key next to it, or one
 * an OCR engine confused), inserted or dropped, or two adjacent characters exchanged.
 */
export function textOneTypo(a: string, b: string): boolean {
  const la = a.length;
  const lb = b.length;
  if (la === lb) {
    let first = -1;
    let second = -1;
    for (let k = 0; k < la; k++) {
      if (a.charCodeAt(k) === b.charCodeAt(k)) continue;
      if (first < 0) first = k;
      else if (second < 0) second = k;
      else return false;
    }
    if (second < 0) return true;
    return second === first + 1 && a[first] === b[second] && a[second] === b[first];
  }
  if (la - lb !== 1 && lb - la !== 1) return false;
  const [long, short] = la > lb ? [a, b] : [b, a];
  let k = 0;
  while (k < short.length && long.charCodeAt(k) === short.charCodeAt(k)) k++;
  return long.slice(k + 1) === short.slice(k);
}

/** SSN level: 0 exact, 1 one typo apart, 2 different, 3 missing. */
export function ssnLevel(a: number, b: number): number {
  if (a === 0 || b === 0) return 3;
  if (a === b) return 0;
  return ssnOneTypo(a, b) ? 1 : 2;
}

/** Agree (0) / disagree (1) / missing (2) of two codes where 0 is missing. */
export function agreeLevel(a: number, b: number): number {
  if (a === 0 || b === 0) return 2;
  return a === b ? 0 : 1;
}
