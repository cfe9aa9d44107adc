/**
 * Parsing of the scalar values that filters compare with, per type. The same rules serve agreement
 * row filters (raw field types) and data-plane filters (released types).
 */
import { textProblem } from './untrusted-input';

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;
/** Matches the longest string ingestion stores. */
export const MAX_VALUE_LENGTH = 65_536;

const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Whether y-m-d is a date of the proleptic Gregorian calendar within years 1..9999. */
export function validCalendarDate(y: number, m: number, d: number): boolean {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  if (m === 2 && ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0)) return d <= 29;
  return d <= DAYS_IN_MONTH[m - 1];
}

/** A 'YYYY-MM-DD' calendar date, or null. */
export function parseDate(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = DATE_PATTERN.exec(value);
  return m && validCalendarDate(+m[1], +m[2], +m[3]) ? value : null;
}

/** A Date at UTC midnight as 'YYYY-MM-DD' (GraphQL Date scalars may hand over Date objects), or null. */
export function dateOfDateObject(value: Date): string | null {
  const t = value.getTime();
  if (!Number.isFinite(t) || t % 86_400_000 !== 0) return null;
  const iso = value.toISOString();
  return iso.length === 24 ? parseDate(iso.slice(0, 10)) : null;
}

/** A finite Date as an ISO instant in UTC within years 1..9999, or null. */
function instantOf(at: Date): string | null {
  if (!Number.isFinite(at.getTime())) return null;
  const iso = at.toISOString();
  // Years outside 0001..9999 are written with six digits and a sign, which PostgreSQL reads otherwise.
  return iso.length === 24 && iso.slice(0, 4) !== '0000' ? iso : null;
}

/**
 * An ISO 8601 date-time as `Date#toISOString` writes it, in UTC, or null. Without an offset it is
 * UTC, as in ingestion, so the meaning never depends on a server's zone. Precision beyond the
 * millisecond (what is stored) is refused unless it is zero, since truncating would change `$gte`.
 */
export function parseDateTime(value: unknown): string | null {
  if (value instanceof Date) return instantOf(value);
  if (typeof value !== 'string') return null;
  const m = DATETIME_PATTERN.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', fraction = '', zulu, sign, oh, om = '00'] = m;
  if (!validCalendarDate(+y, +mo, +d) || +h > 23 || +mi > 59 || +s > 59) return null;
  if (/[1-9]/.test(fraction.slice(3))) return null;
  let offset = 'Z';
  if (!zulu && sign) {
    if (+oh > 23 || +om > 59) return null;
    offset = `${sign}${oh}:${om}`;
  }
  const millis = fraction.padEnd(3, '0').slice(0, 3);
  return instantOf(new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${millis}${offset}`));
}

/** A parsed scalar, or why the value is not one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const bad = (message: string): { ok: false; message: string } => ({ ok: false, message });

/** A string to compare with text. */
export function parseText(value: unknown): Parsed<string> {
  if (typeof value !== 'string') return bad('expected a string');
  const problem = textProblem(value, MAX_VALUE_LENGTH);
  return problem ? bad(problem) : { ok: true, value };
}

/** A 32-bit integer. */
export function parseInt32(value: unknown): Parsed<number> {
  if (typeof value !== 'number' || !Number.isInteger(value)) return bad('expected an integer');
  if (value < INT32_MIN || value > INT32_MAX) return bad('is outside the 32-bit integer range');
  return { ok: true, value: value === 0 ? 0 : value };
}

/** A finite number. -0 becomes 0, as ingestion stores it. */
export function parseFloat64(value: unknown): Parsed<number> {
  if (typeof value !== 'number' || !Number.isFinite(value)) return bad('expected a finite number');
  return { ok: true, value: value === 0 ? 0 : value };
}

/** A boolean. */
export function parseBoolean(value: unknown): Parsed<boolean> {
  return typeof value === 'boolean' ? { ok: true, value } : bad('expected true or false');
}
