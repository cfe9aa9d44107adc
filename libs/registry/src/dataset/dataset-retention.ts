/**
 * A dataset's retention (DESIGN §4.4): records whose DATE/DATETIME `retentionField` is older than
 * `retentionDays` are destroyed by the daily retention job. Pure rules, no database.
 */
import { BrokerError, ErrorCode } from '@broker/core';
import { type FieldDefinition, FieldType } from './dataset-schema';

/** At most a century, as for agreements. */
export const MAX_DATASET_RETENTION_DAYS = 36_500;

/** A dataset's retention, both set or both null. */
export interface DatasetRetention {
  retentionDays: number | null;
  retentionField: string | null;
}

/** No retention. */
export const NO_RETENTION: DatasetRetention = Object.freeze({ retentionDays: null, retentionField: null });

/**
 * The days that ask for no retention: `updateDataset` (UpdateDatasetInput, where a value left out
 * keeps the dataset's) and `retentionPreview` read `retentionDays: 0` as removing retention, a
 * `retentionField` beside it ignored. `registerDataset` has none to remove, and refuses 0.
 */
export const NO_RETENTION_DAYS = 0;

/**
 * The retention a change asks for, before it is validated: none for {@link NO_RETENTION_DAYS};
 * otherwise the days and the field given, each left out (or null) taken from `kept`. `updateDataset`
 * keeps the dataset's retention; `retentionPreview`, whose arguments are the retention as it would
 * stand, keeps {@link NO_RETENTION}. The one home of what 0 means.
 */
export function retentionAsked(
  input: { retentionDays?: number | null; retentionField?: string | null },
  kept: DatasetRetention,
): { retentionDays: number | null; retentionField: string | null } {
  if (input.retentionDays === NO_RETENTION_DAYS) return { ...NO_RETENTION };
  return {
    retentionDays: input.retentionDays ?? kept.retentionDays,
    retentionField: input.retentionField ?? kept.retentionField,
  };
}

/**
 * Validates a retention against a dataset's fields: the problems, or the retention to store.
 * `retentionDays` needs a DATE or DATETIME `retentionField`, and a field needs a number of days.
 */
export function validateRetention(
  input: { retentionDays?: number | null; retentionField?: string | null },
  fields: readonly Pick<FieldDefinition, 'name' | 'type'>[],
): { ok: true; retention: DatasetRetention } | { ok: false; problems: { path: string; message: string }[] } {
  const problems: { path: string; message: string }[] = [];
  const days = input.retentionDays ?? null;
  const name = input.retentionField ?? null;
  if (days === null && name === null)
    return { ok: true, retention: { retentionDays: null, retentionField: null } };
  if (days === null) problems.push({ path: 'retentionDays', message: 'is required with a retentionField' });
  else if (!Number.isInteger(days) || days < 1 || days > MAX_DATASET_RETENTION_DAYS) {
    problems.push({
      path: 'retentionDays',
      message: `must be an integer from 1 to ${MAX_DATASET_RETENTION_DAYS}`,
    });
  }
  if (name === null) {
    problems.push({
      path: 'retentionField',
      message: 'is required with retentionDays: a DATE or DATETIME field',
    });
  } else {
    const field = fields.find((f) => f.name === name);
    if (!field) problems.push({ path: 'retentionField', message: 'must name one of the fields' });
    else if (field.type !== FieldType.DATE && field.type !== FieldType.DATETIME) {
      problems.push({ path: 'retentionField', message: 'must be a DATE or DATETIME field' });
    }
  }
  return problems.length
    ? { ok: false, problems }
    : { ok: true, retention: { retentionDays: days, retentionField: name } };
}

/** What a refused retention answers (BAD_USER_INPUT): each problem, with its input's name. */
export function retentionRefusal(problems: readonly { path: string; message: string }[]): string {
  return `The retention is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
}

/**
 * The retention to store, or the refusal of it (BAD_USER_INPUT, {@link retentionRefusal}, each
 * problem in `details`): what `updateDataset` and `retentionPreview` answer an invalid one.
 */
export function requireValidRetention(
  input: { retentionDays?: number | null; retentionField?: string | null },
  fields: readonly Pick<FieldDefinition, 'name' | 'type'>[],
): DatasetRetention {
  const result = validateRetention(input, fields);
  if (!result.ok) {
    throw new BrokerError(ErrorCode.BAD_USER_INPUT, retentionRefusal(result.problems), {
      reason: 'INVALID_DATASET_DEFINITION',
      details: result.problems,
    });
  }
  return result.retention;
}
