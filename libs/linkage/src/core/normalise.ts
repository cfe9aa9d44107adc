/**
 * Normalisation of identifiers as agencies write them: case, accents, punctuation and spacing of
 * names; dates of birth in any of the forms a DATE or DATETIME column gives; SSNs with or without
 * dashes; sex as a letter or a word; ZIP codes. Pure functions, no I/O.
 */

/** The identity values of one record, as text read from its record table (null where missing). */
export interface IdentityValues {
  firstName: string | null;
  middleName: string | null;
  lastName: string | null;
  /** 'YYYY-MM-DD' (a DATE) or an ISO 8601 date-time whose date part is used. */
  dateOfBirth: string | null;
  sex: string | null;
  ssn: string | null;
  zip: string | null;
}

/** One record's identity after normalisation; 0 and '' mean missing. */
export interface NormalisedIdentity {
  /** Folded given name ('' when missing). */
  first: string;
  /** Folded surname; hyphenated surnames keep one '-' between their parts. */
  last: string;
  /** Char code of the middle name's initial, 0 when missing. */
  middleInitial: number;
  year: number;
  month: number;
  day: number;
  /** 1 male, 2 female, 0 missing. */
  sex: number;
  /** The nine digits as a number, 0 when missing or not a valid SSN. */
  ssn: number;
  /** The five-digit ZIP as a number, 0 when missing. */
  zip: number;
}

const COMBINING_MARKS = /[\u0300-\u036f]/g;
const NOT_PLAIN_ASCII = /[^ -~]/;
const FOLD_CACHE = new Map<string, string>();
const FOLD_CACHE_LIMIT = 200_000;

/**
 * A name folded for comparison: accents dropped, lower case, letters only; hyphens kept (one,
 * between letters) because they join the two surnames of a hyphenated married name.
 * `foldName("O'Brien-Núñez") === 'obrien-nunez'`, `foldName('DE LA CRUZ') === 'delacruz'`.
 */
export function foldName(value: string): string {
  let folded = FOLD_CACHE.get(value);
  if (folded !== undefined) return folded;
  let text = NOT_PLAIN_ASCII.test(value) ? value.normalize('NFD').replace(COMBINING_MARKS, '') : value;
  text = text.toLowerCase();
  let out = '';
  let pendingHyphen = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 97 && c <= 122) {
      if (pendingHyphen && out.length > 0) out += '-';
      pendingHyphen = false;
      out += text[i];
    } else if (c === 45 /* - */) {
      pendingHyphen = true;
    } else if (c === 223 /* ß */) {
      out += 'ss';
    }
    // Everything else (spaces, apostrophes, periods, digits, letters outside Latin) is dropped.
  }
  folded = out;
  if (FOLD_CACHE.size < FOLD_CACHE_LIMIT) FOLD_CACHE.set(value, folded);
  return folded;
}

/** A given name folded, without hyphens ("Mary-Ann" → "maryann"). */
export function foldGivenName(value: string | null): string {
  if (!value) return '';
  const folded = foldName(value);
  return folded.includes('-') ? folded.replace(/-/g, '') : folded;
}

/** A date of birth as year, month and day; zeros when missing or not a real calendar date. */
export function parseDateOfBirth(value: string | null): { year: number; month: number; day: number } {
  const missing = { year: 0, month: 0, day: 0 };
  if (!value) return missing;
  const match = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})/.exec(value);
  if (!match) return missing;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  if (year < 1850 || year > 2200 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return missing;
  }
  return { year, month, day };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}

/**
 * An SSN's nine digits as a number, or 0 when missing or impossible (area 000, 666 or 9xx, group
 * 00, serial 0000, or one digit repeated), since those are placeholders rather than identifiers.
 */
export function parseSsn(value: string | null): number {
  if (!value) return 0;
  let digits = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 48 && c <= 57) digits += value[i];
    else if (c !== 45 && c !== 32) return 0;
  }
  if (digits.length !== 9) return 0;
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || area[0] === '9') return 0;
  if (digits.slice(3, 5) === '00' || digits.slice(5) === '0000') return 0;
  if (/^(\d)\1{8}$/.test(digits)) return 0;
  return Number(digits);
}

/** 1 for male, 2 for female, 0 for missing or anything else. */
export function parseSex(value: string | null): number {
  if (!value) return 0;
  const v = value.trim().toLowerCase();
  if (v === 'm' || v === 'male' || v === 'man') return 1;
  if (v === 'f' || v === 'female' || v === 'woman') return 2;
  return 0;
}

/** A ZIP code's first five digits as a number (ZIP+4 and numbers accepted), 0 when missing. */
export function parseZip(value: string | null): number {
  if (!value) return 0;
  const match = /^\s*(\d{5})(?:-?\d{4})?\s*$/.exec(value) ?? /^\s*(\d{3,4})\s*$/.exec(value);
  if (!match) return 0;
  const zip = Number(match[1]);
  return zip > 0 ? zip : 0;
}

/** Normalises one record's identity values. */
export function normaliseIdentity(values: IdentityValues): NormalisedIdentity {
  const { year, month, day } = parseDateOfBirth(values.dateOfBirth);
  const middle = values.middleName ? foldGivenName(values.middleName) : '';
  return {
    first: foldGivenName(values.firstName),
    last: values.lastName ? foldName(values.lastName) : '',
    middleInitial: middle ? middle.charCodeAt(0) : 0,
    year,
    month,
    day,
    sex: parseSex(values.sex),
    ssn: parseSsn(values.ssn),
    zip: parseZip(values.zip),
  };
}
