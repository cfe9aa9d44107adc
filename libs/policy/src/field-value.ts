/**
 * Parsing of the scalar values that filters compare with, per type. The same rules serve agreement
 * row filters (raw field types) and data-plane filters (released types).
 */
import { parseDateTime, validCalendarDate } from '@broker/core';
import { textProblem } from './untrusted-input';

export { parseDateTime, validCalendarDate };

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;
/** Matches the longest string ingestion stores. */
export const MAX_VALUE_LENGTH = 65_536;

const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
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
