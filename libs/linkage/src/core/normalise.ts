/**
 * Normalisation of identifiers as agencies write them: case, accents, punctuation and spacing of
 * names; dates of birth in any of the forms a DATE or DATETIME column gives; SSNs with or without
 * dashes; sex as a letter or a word; postal codes of any country; other person identifiers; street
 * lines and cities. Pure functions, no I/O. A value present but not understood (an SSN that is
 * not one, an impossible date) is missing to the comparisons, and counted ({@link unparsedRoles}).
 */

import type { IdentityRoleName } from './identity-fields';

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
  idNumber: string | null;
  address: string | null;
  city: string | null;
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
  /** The postal code: upper-case letters and digits ('' when missing); a US ZIP+4 as its five digits. */
  zip: string;
  /** Another person identifier: upper-case letters and digits ('' when missing). */
  idNumber: string;
  /** The street line: lower-case words of letters and digits, one space between ('' when missing). */
  address: string;
  /** The city, folded as a name ('' when missing). */
  city: string;
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
  // The day ends the date, or a time follows: "1990-1-010" is no date (not the 1st of January).
  const match = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:$|[T\s])/.exec(value);
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

/**
 * A postal code of any country: letters and digits, upper case, spaces and dashes dropped
 * ("3012 ab" → "3012AB", "SW1A 1AA" → "SW1A1AA"); nine digits are a US ZIP+4, of which the five
 * digits are kept; '' when
 * missing or when nothing but zeros and separators is left.
 */
export function parsePostalCode(value: string | null): string {
  if (!value) return '';
  const code = identifierText(value);
  if (/^\d{9}$/.test(code)) return code.slice(0, 5);
  return /^0*$/.test(code) ? '' : code;
}

/**
 * A person identifier of any country and alphabet: letters and digits, upper case, separators
 * dropped ("ab-123 456" → "AB123456"); '' when nothing is left or every character is one repeated
 * (a placeholder such as 0000000 or XXXXXX).
 */
export function parseIdNumber(value: string | null): string {
  if (!value) return '';
  const id = identifierText(value);
  if (id.length < 2 || /^(.)\1*$/.test(id)) return '';
  return id;
}

/** Letters and digits of a value, upper case, accents dropped. */
function identifierText(value: string): string {
  const text = NOT_PLAIN_ASCII.test(value) ? value.normalize('NFD').replace(COMBINING_MARKS, '') : value;
  return text.toUpperCase().replace(/[^0-9A-Z]/g, '');
}

/** A street line as words of lower-case letters and digits, one space between. */
export function parseAddress(value: string | null): string {
  if (!value) return '';
  const text = NOT_PLAIN_ASCII.test(value) ? value.normalize('NFD').replace(COMBINING_MARKS, '') : value;
  return text
    .toLowerCase()
    .replace(/[^0-9a-z]+/g, ' ')
    .trim();
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
    zip: parsePostalCode(values.zip),
    idNumber: parseIdNumber(values.idNumber),
    address: parseAddress(values.address),
    city: values.city ? foldGivenName(values.city) : '',
  };
}

/** Per identity role, values present but not understood. */
export type UnparsedCounts = Record<IdentityRoleName, number>;

const present = (value: string | null) => value !== null && value.trim() !== '';

/**
 * Adds to `counts` each role whose value was present in `values` but is missing after
 * normalisation: an SSN that is no US SSN, a date that is no date, a sex that is neither, a name
 * with no letter. These are counted in the run's statistics, never silently dropped.
 */
export function unparsedRoles(
  values: IdentityValues,
  normalised: NormalisedIdentity,
  counts: UnparsedCounts,
) {
  if (present(values.firstName) && !normalised.first) counts.FIRST_NAME++;
  if (present(values.middleName) && !normalised.middleInitial) counts.MIDDLE_NAME++;
  if (present(values.lastName) && !normalised.last) counts.LAST_NAME++;
  if (present(values.dateOfBirth) && !normalised.year) counts.DATE_OF_BIRTH++;
  if (present(values.sex) && !normalised.sex) counts.SEX++;
  if (present(values.ssn) && !normalised.ssn) counts.SSN++;
  if (present(values.zip) && !normalised.zip) counts.ZIP++;
  if (present(values.idNumber) && !normalised.idNumber) counts.ID_NUMBER++;
  if (present(values.address) && !normalised.address) counts.ADDRESS++;
  if (present(values.city) && !normalised.city) counts.CITY++;
}
