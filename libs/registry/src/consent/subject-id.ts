import { badInput } from '@broker/core';
import { FieldType } from '../dataset/dataset-schema';

/** The longest subject id consent and subject access take, in characters (as `consent_event` allows). */
export const MAX_SUBJECT_ID_LENGTH = 200;

// A lone surrogate: the driver would send it as U+FFFD, which may be another subject's id.
const LONE_SURROGATE = /\p{Cs}/u;
// An integer as PostgreSQL's text output writes it: no sign but a minus, no leading zero, no space.
const CANONICAL_INTEGER = /^(0|-?[1-9][0-9]*)$/;

/**
 * A subject id as given, checked and never changed: consent, subject access and the records must
 * name a subject by one identity, and ingestion stores the subject field exactly as uploaded, so
 * " P1", "P1\t" and "P1" are three subjects. No trimming and no normalisation: an id made only of
 * spaces names the subject of that value. Refused: the empty string, ids longer than
 * {@link MAX_SUBJECT_ID_LENGTH} characters, and what no stored record can hold (NUL, which ingestion
 * refuses too) or what would reach the database changed (a lone surrogate). Given the subject
 * field's type, an INTEGER field's id must be written as its records' text is (`7`, not `07`).
 */
export function subjectIdInput(value: unknown, field = 'subjectId', type?: FieldType): string {
  if (typeof value !== 'string') throw badInput(`${field} must be a string`);
  if (value === '') throw badInput(`${field} must not be empty`);
  if (value.length > MAX_SUBJECT_ID_LENGTH && [...value].length > MAX_SUBJECT_ID_LENGTH) {
    throw badInput(`${field} must be at most ${MAX_SUBJECT_ID_LENGTH} characters`);
  }
  if (value.includes('\u0000')) throw badInput(`${field} must not contain a NUL character`);
  if (LONE_SURROGATE.test(value)) throw badInput(`${field} must be valid Unicode text`);
  // An INTEGER subject field's records are named by the integer as PostgreSQL writes it ("7"):
  // "07", " 7" or "+7" would be recorded, yet name no record, so a withdrawal would change nothing.
  if (type === FieldType.INTEGER && !CANONICAL_INTEGER.test(value)) {
    throw badInput(`${field} must be an integer written as the records hold it (such as 7, never 07 or +7)`);
  }
  return value;
}
