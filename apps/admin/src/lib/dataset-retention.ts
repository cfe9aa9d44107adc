/**
 * A dataset's retention in the admin UI (DESIGN §4.4): records whose DATE/DATETIME `retentionField`
 * is older than `retentionDays` are destroyed by the daily retention job.
 *
 * `validateRetention`, `retentionRefusal` and `MAX_DATASET_RETENTION_DAYS` are libs/registry's
 * (dataset-retention.ts), which this browser bundle cannot import, with the same messages;
 * libs/registry/src/dataset/dataset-retention.spec.ts fails when the two differ. The rest is the
 * form's own: reading what was typed, and what a change would destroy.
 */

/** At most a century, as for agreements. */
export const MAX_DATASET_RETENTION_DAYS = 36_500;

/** A dataset's retention, both set or both null. */
export interface DatasetRetention {
  retentionDays: number | null;
  retentionField: string | null;
}

/** A problem with one input, as the broker names it. */
export interface RetentionProblem {
  path: string;
  message: string;
}

/** The field types retention can be measured from. */
export const RETENTION_FIELD_TYPES: readonly string[] = ['DATE', 'DATETIME'];

/**
 * Validates a retention against a dataset's fields: the problems, or the retention to store.
 * `retentionDays` needs a DATE or DATETIME `retentionField`, and a field needs a number of days.
 */
export function validateRetention(
  input: { retentionDays?: number | null; retentionField?: string | null },
  fields: readonly { name: string; type: string }[],
): { ok: true; retention: DatasetRetention } | { ok: false; problems: RetentionProblem[] } {
  const problems: RetentionProblem[] = [];
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
    else if (!RETENTION_FIELD_TYPES.includes(field.type)) {
      problems.push({ path: 'retentionField', message: 'must be a DATE or DATETIME field' });
    }
  }
  return problems.length
    ? { ok: false, problems }
    : { ok: true, retention: { retentionDays: days, retentionField: name } };
}

/** What a refused retention answers (BAD_USER_INPUT): each problem, with its input's name. */
export function retentionRefusal(problems: readonly RetentionProblem[]): string {
  return `The retention is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
}

/**
 * The number of days typed: null when the box is empty, NaN when it holds anything but a whole
 * number (which validateRetention then refuses), so `30`, ` 30 ` and `030` are 30.
 */
export function parseRetentionDays(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  return /^-?[0-9]{1,9}$/.test(trimmed) ? Number(trimmed) : Number.NaN;
}

/**
 * What the retention form asks of `updateDataset`: the retention typed, validated as the broker
 * will; both inputs empty removes retention, which UpdateDatasetInput spells `retentionDays: 0`.
 */
export function retentionUpdate(
  draft: { days: string; field: string },
  fields: readonly { name: string; type: string }[],
):
  | {
      ok: true;
      retention: DatasetRetention;
      input: { retentionDays: number; retentionField: string | null };
    }
  | { ok: false; problems: RetentionProblem[] } {
  const result = validateRetention(
    { retentionDays: parseRetentionDays(draft.days), retentionField: draft.field || null },
    fields,
  );
  if (!result.ok) return result;
  const { retentionDays, retentionField } = result.retention;
  return {
    ok: true,
    retention: result.retention,
    input:
      retentionDays === null ? { retentionDays: 0, retentionField: null } : { retentionDays, retentionField },
  };
}

/**
 * Whether going from `current` to `next` may destroy records sooner: retention set where there was
 * none, fewer days, or measured from another field. Then the next daily run destroys the records
 * whose `next.retentionField` is more than `next.retentionDays` days old, which the steward confirms.
 */
export function destroysSooner(
  current: DatasetRetention,
  next: DatasetRetention,
): next is { retentionDays: number; retentionField: string } {
  if (next.retentionDays === null || next.retentionField === null) return false;
  if (current.retentionDays === null || current.retentionField === null) return true;
  return next.retentionDays < current.retentionDays || next.retentionField !== current.retentionField;
}
