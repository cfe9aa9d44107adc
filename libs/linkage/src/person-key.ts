import {
  type CompiledAgreement,
  type DatasetShape,
  PERSON_KEY,
  type RowFilter,
  type SqlParams,
  allows,
  keyPrefixesSql,
  personHashSql,
  populationOf,
  populationPredicate,
  quoteIdent,
  scopedKeySql,
} from '@broker/policy';
import { recordTable } from '@broker/registry';

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
   * is among the records of those persons in the run in force. Where the lookup table of the grant's
   * population, scope and dataset is built for that run (see PersonKeyIndex), the population's
   * records are found by the first 64 bits of their persons' keys and only those persons are hashed;
   * until then, it hashes each linked record of the population once, having found the population
   * for every linked record alike (the filter on {@link value} costs a correlated subquery per
   * record). It goes beside such a filter (it selects a superset), never instead of it.
   */
  among(keys: string): string;
  /**
   * The lookup table {@link among} reads: the grant's (its agreement and population), the pseudonyms'
   * scope and the dataset; null when the parts were asked for without a grant, whose `among` hashes
   * every linked record.
   */
  table: PersonKeyTable | null;
}

/**
 * One lookup table of pseudonyms (see PersonKeyIndex): the agreement whose grant it serves, the scope
 * its pseudonyms belong to, `<recipient agency id>/<purpose>`, the dataset whose records it holds, and
 * the grant's row filter, whose population (see populationOf) is the only records it files (null:
 * every linked record).
 */
export interface PersonKeyTable {
  agreementId: string;
  scope: string;
  datasetId: string;
  rowFilter: RowFilter | null;
}

/** The grant a statement's personKey filter reads the lookup table of (see {@link personKeyParts}). */
export interface PersonKeyGrant {
  agreementId: string;
  rowFilter: RowFilter | null;
  /** The grant's dataset: where its row filter finds the population's records. */
  shape: PopulationShape;
}

/** What of a dataset {@link populationLinkedSql} reads its records by. */
export type PopulationShape = Pick<DatasetShape, 'slug' | 'keyField' | 'fields'>;

/**
 * The linked records (`record_key`, `person_id`) of a run (`run`, SQL of its id) and a dataset
 * (`dataset`, SQL of its id) that a grant's population holds: every one, or, under a row filter,
 * those whose record the filter admits (read through the population's indexes, the filter written
 * in). One home for what a lookup table of pseudonyms files (PersonKeyIndex's build) and what a
 * filter on personKey hashes while that table is not built ({@link PersonKeyParts.among}).
 */
export function populationLinkedSql(
  shape: PopulationShape,
  rowFilter: RowFilter | null,
  run: string,
  dataset: string,
): string {
  const alias = 'pr';
  const admitted = populationPredicate(rowFilter, datasetShapeOf(shape), alias);
  const linked = `SELECT lp.record_key, lp.person_id FROM linkage_person lp`;
  const ofRun = `lp.run_id = ${run} AND lp.dataset_id = ${dataset}`;
  return admitted
    ? `${linked} JOIN ${recordTable(shape.slug)} ${alias} ON ${alias}.${quoteIdent(shape.keyField)}::text = lp.record_key
        WHERE ${ofRun} AND ${admitted}`
    : `${linked} WHERE ${ofRun}`;
}

/**
 * `shape` as the policy's row-filter compiler takes it, the same object for the same shape: the
 * compiler remembers a filter parsed, and written in, per shape object (see rowFilterSql), so a
 * shape widened anew at each request would parse the filter again at each request.
 */
function datasetShapeOf(shape: PopulationShape): DatasetShape {
  let widened = datasetShapes.get(shape);
  if (!widened) {
    widened = { typeName: '', subjectField: null, id: '', ...shape };
    datasetShapes.set(shape, widened);
  }
  return widened;
}
const datasetShapes = new WeakMap<PopulationShape, DatasetShape>();

/** The scope of a recipient's pseudonyms for one purpose: what their key is derived from. */
export function personKeyScope(recipientAgencyId: string, purpose: string): string {
  return `${recipientAgencyId}/${purpose}`;
}

/**
 * The lookup tables a statement can read under an agreement version (compiled, see compileAgreement)
 * whose recipient is `recipientAgencyId`: for each grant and purpose under which its ability lets a
 * request name personKey (the grant has linkage, the purpose is the version's), the table of the
 * grant's population, the recipient's scope for the purpose and the dataset, as the data plane names
 * it ({@link personKeyParts}). Any other table of the agreement is one no statement reads: no grant
 * in force asks for its pseudonyms (PersonKeyIndex drops it).
 */
export function personKeyTablesOf(
  agreement: Pick<CompiledAgreement, 'id' | 'purposes' | 'grants' | 'ability'>,
  recipientAgencyId: string,
): PersonKeyTable[] {
  const tables: PersonKeyTable[] = [];
  for (const [datasetId, grant] of agreement.grants) {
    for (const purpose of agreement.purposes) {
      if (!allows(agreement.ability, 'aggregate', datasetId, purpose, [PERSON_KEY])) continue;
      tables.push({
        agreementId: agreement.id,
        scope: personKeyScope(recipientAgencyId, purpose),
        datasetId,
        rowFilter: grant.rowFilter,
      });
    }
  }
  return tables;
}

/** The pieces of {@link personKeySql}, one home for how a person's key is derived. */
export function personKeyParts(
  params: SqlParamCollector,
  datasetId: string,
  recipientAgencyId: string,
  purpose: string,
  recordKeySql: string,
  /** The grant whose population's table a filter reads (absent: none is read). */
  grant?: PersonKeyGrant,
): PersonKeyParts {
  const scopeText = personKeyScope(recipientAgencyId, purpose);
  const scope = params.add(scopeText, 'text');
  const dataset = params.add(datasetId, 'uuid');
  const scopedKey = scopedKeySql(scope);
  const personHash = personHashSql('lp.person_id', scopedKey);
  const linked = `FROM linkage_state ls JOIN linkage_person lp ON lp.run_id = ls.current_run_id WHERE ls.id = 1 AND lp.dataset_id = ${dataset}`;
  // The lookup table of the grant's population, scope and dataset for the run in force, when it is
  // built (whole: see PersonKeyIndex). A table of another population (the filter of an earlier
  // version) files other records, and is never read. Its parameters are added only once `among` is
  // written: a statement that reads personKey alone binds none it does not use.
  let built: string | undefined;
  const builtSql = () =>
    (built ??= grant
      ? `SELECT ks.id FROM linkage_state ks2 JOIN person_key_scope ks ON ks.run_id = ks2.current_run_id
     WHERE ks2.id = 1 AND ks.agreement_id = ${params.add(grant.agreementId, 'uuid')} AND ks.scope = ${scope}
       AND ks.dataset_id = ${dataset} AND ks.population = ${params.add(populationOf(grant.rowFilter), 'text')}`
      : `SELECT NULL::int WHERE FALSE`);
  return {
    value: `(SELECT ${personHash} ${linked} AND lp.record_key = (${recordKeySql}))`,
    // Two branches, of which PostgreSQL runs one: by the table, the population's records of the
    // persons whose keys start as asked (none when the table is not built), each person's key
    // computed whole, so that no record the grant leaves out is read; without the table, every
    // linked record of the population hashed (a cost that does not depend on the persons asked),
    // behind a one-time filter on whether it is built. The outer OFFSET 0 keeps that filter above
    // the scan: a parallel scan's workers would otherwise be started (5 ms) only for each to find it
    // false. Under a row filter the population is found first, for every linked record alike (the
    // inner OFFSET 0 keeps the hash out of its join, at the price of hashing in one process):
    // hashed first, the records of the persons asked would be fetched, those the row filter leaves
    // out too, and how long that took would tell that they exist. The keys found are an array,
    // computed whole once (an InitPlan), never a set the records are joined to: a semi-join stops
    // reading its inner side at the first match, so the hashing would stop at the asked person's
    // first record, having read (and dropped) the records before it in its scan's order, those the
    // row filter leaves out among them: a time that would depend on the person asked.
    among: (keys) => {
      const table = builtSql();
      const hashed = grant?.rowFilter
        ? `SELECT l.record_key FROM (${populationLinkedSql(
            grant.shape,
            grant.rowFilter,
            `(SELECT ls.current_run_id FROM linkage_state ls WHERE ls.id = 1)`,
            dataset,
          )} OFFSET 0) l WHERE ${personHashSql('l.person_id', scopedKey)} = ANY(${keys})`
        : `SELECT lp.record_key ${linked} AND ${personHash} = ANY(${keys})`;
      return `((${recordKeySql}) = ANY (ARRAY(
         SELECT pk.record_key FROM person_key pk
          WHERE pk.scope_id = (${table}) AND pk.prefix = ANY (${keyPrefixesSql(keys)})
            AND ${personHashSql('pk.person_id', scopedKey)} = ANY(${keys})
         UNION ALL
         SELECT h.record_key FROM (${hashed} OFFSET 0) h WHERE NOT EXISTS (${table}))))`;
    },
    table: grant
      ? { agreementId: grant.agreementId, scope: scopeText, datasetId, rowFilter: grant.rowFilter }
      : null,
  };
}
