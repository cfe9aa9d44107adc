import { quoteIdent } from '@broker/core';
import { columnTypeOf, type DatasetDefinition } from './dataset-schema';

/** The schema that holds one table of records per dataset. */
export const RECORDS_SCHEMA = 'records';

/** The qualified, quoted name of a dataset's record table. Slugs are validated before they get here. */
export function recordTable(slug: string): string {
  return `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(slug)}`;
}

/**
 * A new random row id (`_rid`): a record's when it is written, and again when it moves to another
 * subject (see IngestService). It orders rows and pages through them without revealing anything about
 * the records.
 */
export const NEW_RID_SQL = 'floor(random() * 9007199254740991)::bigint';

/**
 * The one DDL path for record tables: identifiers are validated by `validateDefinition` and quoted
 * here; no other text of the steward's enters the statement.
 */
export function createRecordTableSql(definition: DatasetDefinition): string {
  const columns = definition.fields.map(
    (f) => `${quoteIdent(f.name)} ${columnTypeOf(f.type)}${f.required ? ' NOT NULL' : ''}`,
  );
  columns.push(`"_ingested_at" timestamptz NOT NULL DEFAULT now()`);
  columns.push(`"_rid" bigint NOT NULL DEFAULT ${NEW_RID_SQL}`);
  columns.push(`PRIMARY KEY (${quoteIdent(definition.keyField)})`);
  return `CREATE TABLE ${recordTable(definition.slug)} (\n  ${columns.join(',\n  ')}\n)`;
}

/**
 * The statement that gives a new record table of a dataset with a subject field its `_consent`
 * column and the triggers that keep it (the database's `record_consent_attach`, migration
 * record-consent: the one home of those triggers), with its parameters.
 */
export function recordConsentAttach(
  slug: string,
  datasetId: string,
  subjectField: string,
  keyField: string,
): { sql: string; params: string[] } {
  return {
    sql: `SELECT record_consent_attach(format('${RECORDS_SCHEMA}.%I', $1::text)::regclass, $2::uuid, $3, $4)`,
    params: [slug, datasetId, subjectField, keyField],
  };
}
