import { badInput } from '@broker/core';

/** The longest subject id consent and subject access take, in characters (as `consent_event` allows). */
export const MAX_SUBJECT_ID_LENGTH = 200;

// A lone surrogate: the driver would send it as U+FFFD, which may be another subject's id.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A subject id as given, checked and never changed: consent, subject access and the records must
 * name a subject by one identity, and ingestion stores the subject field exactly as uploaded, so
 * " P1", "P1\t" and "P1" are three subjects. No trimming and no normalisation: an id made only of
 * spaces names the subject of that value. Refused: the empty string, ids longer than
 * {@link MAX_SUBJECT_ID_LENGTH} characters, and what no stored record can hold (NUL, which ingestion
 * refuses too) or what would reach the database changed (a lone surrogate).
 */
export function subjectIdInput(value: unknown, field = 'subjectId'): string {
  if (typeof value !== 'string') throw badInput(`${field} must be a string`);
  if (value === '') throw badInput(`${field} must not be empty`);
  if (value.length > MAX_SUBJECT_ID_LENGTH && [...value].length > MAX_SUBJECT_ID_LENGTH) {
    throw badInput(`${field} must be at most ${MAX_SUBJECT_ID_LENGTH} characters`);
  }
  if (value.includes('\u0000')) throw badInput(`${field} must not contain a NUL character`);
  if (LONE_SURROGATE.test(value)) throw badInput(`${field} must be valid Unicode text`);
  return value;
}
