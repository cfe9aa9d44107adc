/**
 * The ways identifiers go wrong between agencies, as small pure functions over a seeded random:
 * keyboard typos, nicknames, day/month swaps, mistyped SSNs, middle initials, and the clerical
 * styles (upper case, accents dropped, apostrophes dropped) that records are written in.
 */
import { daysInMonth, formatDate, isCalendarDate } from './civil-date';
import { NICKNAMES } from './name-tables';
import type { SeededRandom } from './seeded-random';

/** The kinds of typo a clerk makes. */
export type TypoKind = 'TRANSPOSITION' | 'SUBSTITUTION' | 'DELETION';

// Neighbouring keys on a QWERTY keyboard: most substitutions hit an adjacent key.
const QWERTY_NEIGHBOURS = new Map(
  `a:qwsz b:vghn c:xdfv d:serfcx e:wsdr f:drtgvc g:ftyhbv h:gyujnb i:ujko j:huikmn k:jiolm l:kop m:njk
   n:bhjm o:iklp p:ol q:wa r:edft s:awedxz t:rfgy u:yhji v:cfgb w:qase x:zsdc y:tghu z:asx`
    .split(/\s+/)
    .map((entry) => entry.split(':') as [string, string]),
);
const DIGITS = '0123456789';
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

/** Whether a character is a letter or digit (typos in names and numbers only touch those). */
const isAlnum = (c: string) => /[\p{L}\p{N}]/u.test(c);

/** Matches the case of `like` (upper or lower) on `c`. */
const caseLike = (c: string, like: string) =>
  like === like.toUpperCase() ? c.toUpperCase() : c.toLowerCase();

/**
 * One typo: swaps two adjacent differing characters, replaces one (usually with a neighbouring
 * key), or drops one. Always returns a different string when `value` has two or more letters or
 * digits; a shorter value is returned unchanged with `kind` null.
 */
export function withTypo(
  value: string,
  random: SeededRandom,
  kinds: readonly TypoKind[] = ['TRANSPOSITION', 'SUBSTITUTION', 'DELETION'],
): { value: string; kind: TypoKind | null } {
  const positions: number[] = [];
  for (let i = 0; i < value.length; i++) if (isAlnum(value[i])) positions.push(i);
  if (positions.length < 2) return { value, kind: null };
  const kind = random.pick(kinds);
  if (kind === 'TRANSPOSITION') {
    const pairs = positions.filter(
      (i) =>
        i + 1 < value.length &&
        isAlnum(value[i + 1]) &&
        value[i].toLowerCase() !== value[i + 1].toLowerCase(),
    );
    if (pairs.length > 0) {
      const i = random.pick(pairs);
      const [a, b] = [value[i], value[i + 1]];
      // The case stays with the position ("Jonh", not "JoNh").
      return { value: value.slice(0, i) + caseLike(b, a) + caseLike(a, b) + value.slice(i + 2), kind };
    }
    // Nothing to swap ("Aaa"): fall through to a substitution.
  }
  if (kind === 'DELETION' && positions.length >= 3) {
    const i = random.pick(positions);
    return { value: value.slice(0, i) + value.slice(i + 1), kind };
  }
  const i = random.pick(positions);
  const original = value[i];
  const lower = original.toLowerCase();
  let replacement: string;
  if (DIGITS.includes(original)) {
    replacement = DIGITS[(DIGITS.indexOf(original) + random.int(1, 9)) % 10];
  } else {
    const neighbours = QWERTY_NEIGHBOURS.get(lower);
    replacement = neighbours && random.chance(0.8) ? random.pick([...neighbours]) : random.pick([...LETTERS]);
    if (replacement === lower) replacement = lower === 'e' ? 'a' : 'e';
    replacement = caseLike(replacement, original);
  }
  return { value: value.slice(0, i) + replacement + value.slice(i + 1), kind: 'SUBSTITUTION' };
}

const NICKNAME_MAP = new Map(Object.entries(NICKNAMES));

/** A nickname of a formal given name, or null when the name has none. */
export function nicknameOf(firstName: string, random: SeededRandom): string | null {
  const names = NICKNAME_MAP.get(firstName);
  return names ? random.pick(names) : null;
}

/** Whether a formal given name has a nickname in the table. */
export function hasNickname(firstName: string): boolean {
  return NICKNAME_MAP.has(firstName);
}

/** The date with day and month swapped (2 March → 3 February), or null when that is not a different real date. */
export function swapDayMonth(year: number, month: number, day: number): string | null {
  if (day === month || day > 12) return null;
  return formatDate(year, day, month);
}

/** A date mistyped in one place: the day or the month off by one, or a digit of the year changed. */
export function dateTypo(year: number, month: number, day: number, random: SeededRandom): string {
  switch (random.int(0, 3)) {
    case 0:
      return formatDate(year, month, day === daysInMonth(year, month) ? day - 1 : day + 1);
    case 1: {
      const m = month === 12 ? 11 : month + 1;
      return formatDate(year, m, Math.min(day, daysInMonth(year, m)));
    }
    case 2: {
      // The last digit of the year: 1987 → 1988, or 1986.
      const y = year % 10 === 9 ? year - 1 : year + 1;
      return formatDate(y, month, isCalendarDate(y, month, day) ? day : 28);
    }
    default: {
      // The decade: 1987 → 1977, the kind of slip that a form with two-digit years invites (never
      // younger, which would make an adult a child).
      const y = year - 10;
      return formatDate(y, month, isCalendarDate(y, month, day) ? day : 28);
    }
  }
}

/** The nine digits of an SSN with one typo (two adjacent digits swapped, or one replaced). */
export function ssnTypo(digits: string, random: SeededRandom): string {
  return withTypo(digits, random, ['TRANSPOSITION', 'SUBSTITUTION']).value;
}

/** 'NNN-NN-NNNN' of nine digits. */
export function formatSsn(digits: string): string {
  return `${digits.slice(0, 3)}-${digits.slice(3, 5)}-${digits.slice(5)}`;
}

/** How a clerk or a form writes names: the record styles of the four agencies. */
export type NameStyle =
  /** As the person spells it: "José", "O'Brien", "De la Cruz". */
  | 'AS_IS'
  /** Accents dropped: "Jose", "O'Brien". */
  | 'ASCII'
  /** Upper case: "JOSÉ", "O'BRIEN". */
  | 'UPPER'
  /** Upper case, no accents, apostrophes and periods dropped: "JOSE", "OBRIEN", "ST JOHN". */
  | 'UPPER_ASCII'
  /** Upper case, punctuation as spaces: "O BRIEN". */
  | 'UPPER_SPACED'
  /** Typed in lower case on a web form: "josé", "o'brien". */
  | 'LOWER';

const COMBINING_MARKS = /[\u0300-\u036f]/g;
// Anything beyond printable ASCII may carry an accent; plain names skip the normalisation.
const NOT_PLAIN_ASCII = /[^ -~]/;

/** The string without accents ("Núñez" → "Nunez"). */
export function stripAccents(value: string): string {
  return NOT_PLAIN_ASCII.test(value) ? value.normalize('NFD').replace(COMBINING_MARKS, '') : value;
}

// Names come from small tables, so most styled spellings repeat: remember them (up to a bound,
// since typos make new ones).
const STYLED = new Map<NameStyle, Map<string, string>>();
const STYLED_LIMIT = 20_000;

/** Writes a name in a style. */
export function styleName(value: string, style: NameStyle): string {
  let cache = STYLED.get(style);
  if (!cache) STYLED.set(style, (cache = new Map()));
  let styled = cache.get(value);
  if (styled === undefined) {
    styled = applyStyle(value, style);
    if (cache.size < STYLED_LIMIT) cache.set(value, styled);
  }
  return styled;
}

function applyStyle(value: string, style: NameStyle): string {
  switch (style) {
    case 'AS_IS':
      return value;
    case 'ASCII':
      return stripAccents(value);
    case 'UPPER':
      return value.toUpperCase();
    case 'UPPER_ASCII':
      return stripAccents(value).toUpperCase().replace(/['.]/g, '');
    case 'UPPER_SPACED':
      return stripAccents(value).toUpperCase().replace(/['.]/g, ' ').replace(/\s+/g, ' ').trim();
    case 'LOWER':
      return value.toLowerCase();
  }
}

/** The fold that makes two spellings comparable: no accents, no punctuation or spaces, lower case. */
export function foldName(value: string): string {
  return stripAccents(value)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}
