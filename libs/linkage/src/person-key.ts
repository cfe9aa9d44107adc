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
  return personKeyParts(params, datasetId, recipientAgencyId, purpose, recordKeySql).value;
}

/** personKey's SQL pieces for one statement, whose parameters are added once (see {@link personKeySql}). */
export interface PersonKeyParts {
  /** The record's personKey (see {@link personKeySql}). */
  value: string;
  /**
   * A condition every record whose personKey is one of `keys` (a `text[]` placeholder) meets: its key
   * is among the records of those persons in the run in force. It hashes each linked record of the
   * dataset once, where the filter on {@link value} costs a correlated subquery per record; it goes
   * beside such a filter (it selects a superset), never instead of it.
   */
  among(keys: string): string;
}

/** The pieces of {@link personKeySql}, one home for how a person's key is derived. */
export function personKeyParts(
  params: SqlParamCollector,
  datasetId: string,
  recipientAgencyId: string,
  purpose: string,
  recordKeySql: string,
): PersonKeyParts {
  const scope = params.add(`${recipientAgencyId}/${purpose}`, 'text');
  const dataset = params.add(datasetId, 'uuid');
  // The scoped key is an uncorrelated subquery: PostgreSQL computes it once per statement.
  const scopedKey = `(SELECT public.hmac(convert_to(${scope}, 'UTF8'), s.secret, 'sha256') FROM linkage_secret s WHERE s.id = 1)`;
  const personHash = `encode(public.hmac(convert_to(lp.person_id::text, 'UTF8'), ${scopedKey}, 'sha256'), 'hex')`;
  const linked = `FROM linkage_state ls JOIN linkage_person lp ON lp.run_id = ls.current_run_id WHERE ls.id = 1 AND lp.dataset_id = ${dataset}`;
  return {
    value: `(SELECT ${personHash} ${linked} AND lp.record_key = (${recordKeySql}))`,
    among: (keys) =>
      `((${recordKeySql}) IN (SELECT lp.record_key ${linked} AND ${personHash} = ANY(${keys})))`,
  };
}
