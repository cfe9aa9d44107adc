import { type SqlParams, columnRef } from './sql-builder';
import type { ReleasedField } from './policy.types';

/** The UTC calendar date of a DATE or DATETIME field released RAW, in the table aliased `t`. */
export function utcDateSql(released: Pick<ReleasedField, 'source' | 'type'>, t: string): string {
  const column = columnRef(t, released.source);
  return released.type === 'DateTime' ? `(${column} AT TIME ZONE 'UTC')::date` : column;
}

/**
 * The window of a linked count (DESIGN §4.2): `on` (of the other dataset, aliased `o`) falls
 * `minDays`..`maxDays` whole days after `after` (of this one, aliased `t`), counted between UTC
 * dates, both bounds included; no upper bound when `maxDays` is null. A null date matches nothing.
 */
export function windowSql(
  after: Pick<ReleasedField, 'source' | 'type'>,
  t: string,
  on: Pick<ReleasedField, 'source' | 'type'>,
  o: string,
  minDays: number,
  maxDays: number | null,
  params: SqlParams,
): string {
  const days = `(${utcDateSql(on, o)} - ${utcDateSql(after, t)})`;
  const lower = `${days} >= ${params.add(minDays, 'integer')}`;
  return maxDays === null ? lower : `${lower} AND ${days} <= ${params.add(maxDays, 'integer')}`;
}
