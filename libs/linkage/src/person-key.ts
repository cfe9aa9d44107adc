import type { SqlParams } from '@broker/policy';

/** What {@link personKeySql} needs of the data plane's parameter collector. */
export type SqlParamCollector = Pick<SqlParams, 'add'>;

/**
 * The SQL expression of a record's `personKey`: the lowercase hex HMAC-SHA-256 of its person id
 * (from the linkage run in force) under a key derived for one (recipient agency, purpose), or NULL
 * when the record is not linked (no run has succeeded, or the record came after the run).
 *
 * The key is derived inside PostgreSQL, HMAC(secret, "<agency id>/<purpose>"), from a secret no
 * API returns, so it never leaves the database: one recipient can join its datasets for one
 * purpose, and keys for another recipient or another purpose are unrelated. A correlated
 * subquery on the primary key of `linkage_person`, usable in a SELECT list, WHERE and ORDER BY.
 *
 * @param params the statement's parameters (values are added, never written into the SQL)
 * @param recordKeySql SQL of the record's key as text, e.g. `t."booking_id"::text`
 * @example
 * const key = personKeySql(params, dataset.id, caller.agencyId, 'RECIDIVISM_EVALUATION', `t."booking_id"::text`);
 * sql = `SELECT ${key} AS "personKey", ... FROM records."jail_bookings" t`;
 */
export function personKeySql(
  params: SqlParamCollector,
  datasetId: string,
  recipientAgencyId: string,
  purpose: string,
  recordKeySql: string,
): string {
  const scope = params.add(`${recipientAgencyId}/${purpose}`, 'text');
  const dataset = params.add(datasetId, 'uuid');
  // The scoped key is an uncorrelated subquery: PostgreSQL computes it once per statement.
  const scopedKey = `(SELECT public.hmac(convert_to(${scope}, 'UTF8'), s.secret, 'sha256') FROM linkage_secret s WHERE s.id = 1)`;
  return (
    `(SELECT encode(public.hmac(convert_to(lp.person_id::text, 'UTF8'), ${scopedKey}, 'sha256'), 'hex')` +
    ` FROM linkage_state ls JOIN linkage_person lp ON lp.run_id = ls.current_run_id` +
    ` WHERE ls.id = 1 AND lp.dataset_id = ${dataset} AND lp.record_key = (${recordKeySql}))`
  );
}
