import type { PoolClient } from 'pg';
import { createHash } from 'node:crypto';
import { quoteIdent } from '@broker/core';
import { type FieldDefinition, FieldType } from './dataset-schema';
import { RECORDS_SCHEMA, recordTable } from './record-table';

/** At most this many columns in one declared index, and this many declared indexes per dataset. */
export const MAX_INDEX_COLUMNS = 4;
export const MAX_DECLARED_INDEXES = 16;

/** What an index of a record table is built over: the dataset's fields, by name. */
export interface RecordIndexShape {
  slug: string;
  keyField: string;
  fields: readonly Pick<FieldDefinition, 'name' | 'type'>[];
}

/**
 * One column of a record index. Text compares in code point order everywhere in the data plane
 * (`COLLATE "C"`, DESIGN §4.2), so text columns are indexed in that collation: an index in the
 * database's own collation could not serve a single ordering or range the data plane writes.
 */
function indexColumn(field: Pick<FieldDefinition, 'name' | 'type'>): string {
  return `${quoteIdent(field.name)}${field.type === FieldType.STRING ? ' COLLATE "C"' : ''}`;
}

/** One index of a record table: its name (unqualified, in the records schema) and its DDL. */
export interface RecordIndex {
  name: string;
  /** The index as `to_regclass` takes it: schema-qualified and quoted. */
  qualified: string;
  /** `concurrently` (outside a transaction) does not block ingestion. */
  sql(concurrently: boolean): string;
}

/**
 * One index of a record table, over `fields` then the page order's tie-break (the random row id,
 * then the key), so that it serves a filter on its first field and an ordering by its fields (either
 * direction) walked page after page by keyset cursors. Named by a digest of its columns, so building
 * it twice builds it once.
 */
export function recordIndex(shape: RecordIndexShape, fields: readonly string[]): RecordIndex {
  const columns = indexColumns(shape, fields);
  return namedRecordIndex(
    shape.slug,
    `${shape.slug.slice(0, 40)}_ix_${digestOf([shape.slug, columns])}`,
    columns,
  );
}

/** The quoted columns of {@link recordIndex} over `fields`. */
function indexColumns(shape: RecordIndexShape, fields: readonly string[]): string[] {
  const byName = new Map(shape.fields.map((f) => [f.name, f]));
  const key = byName.get(shape.keyField);
  if (!key) throw new Error(`unknown key field ${shape.keyField}`);
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const name of fields) {
    const field = byName.get(name);
    if (!field) throw new Error(`unknown field ${name}`);
    if (seen.has(name)) continue;
    seen.add(name);
    columns.push(indexColumn(field));
  }
  // An index led by the key is already in key order: nothing after it can break a tie.
  if (!seen.has(shape.keyField)) {
    columns.push(quoteIdent('_rid'));
    columns.push(indexColumn(key));
  }
  return columns;
}

function digestOf(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/**
 * An index named `name` of the record table of `slug`, over `columns` (each already quoted), partial
 * on `predicate` where one is given: the one home of an index's qualified name and DDL, for
 * {@link recordIndex}, {@link populationIndexes} and the retention job's index.
 */
export function namedRecordIndex(
  slug: string,
  name: string,
  columns: readonly string[],
  predicate?: string,
): RecordIndex {
  return {
    name,
    qualified: `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(name)}`,
    sql: (concurrently) => {
      const head = `CREATE INDEX ${concurrently ? 'CONCURRENTLY ' : ''}IF NOT EXISTS ${quoteIdent(name)} ON ${recordTable(
        slug,
      )} (${columns.join(', ')})`;
      return predicate === undefined ? head : partialIndexSql(head, predicate);
    },
  };
}

/**
 * Where the predicate of a partial index starts in its DDL, whatever comes before it (see
 * {@link partialIndexSql}). Past the longest head a record index can have (about 660 characters:
 * names of at most 63 characters, at most {@link MAX_POPULATION_INDEX_COLUMNS} columns).
 */
const PREDICATE_OFFSET = 1024;

/**
 * The DDL of a partial index: `head` (CREATE INDEX … (columns)), then its predicate, always at
 * {@link PREDICATE_OFFSET}. PostgreSQL keeps in the index's catalog row the predicate's node tree,
 * which records where in the statement each node stood: written at one offset, a predicate is stored
 * alike, to the byte, by every index of a population (whatever its columns) and by the probe that
 * decides whether it can be stored at all ({@link unindexablePredicates}).
 */
function partialIndexSql(head: string, predicate: string): string {
  const lead = `${head} WHERE `;
  if (lead.length > PREDICATE_OFFSET) throw new Error(`an index's head is longer than ${PREDICATE_OFFSET}`);
  return `${lead.padEnd(PREDICATE_OFFSET)}${predicate}`;
}

/** The most columns an index of a population has: a declared index's, then the page order's tie-break. */
export const MAX_POPULATION_INDEX_COLUMNS = MAX_INDEX_COLUMNS + 2;

/**
 * PostgreSQL's error for a limit of the server (class 54): here, an index's catalog row too large
 * for a page ("row is too big", 54000) or a predicate too complex to analyse (54001).
 */
const PROGRAM_LIMIT = /^54/;

/**
 * The predicates, among `predicates` (of populations of the dataset `slug`: see
 * {@link populationIndexes}), that PostgreSQL cannot store as an index's predicate. An index keeps
 * its predicate in its one row of `pg_index`, which has no TOAST table: the row, predicate
 * compressed, must fit in a page (8,160 bytes), which a row filter the policy accepts may not (a
 * thousand-value `$in` list of numbers or dates, a long string of varied characters). How much the
 * predicate compresses decides it, so no size written here could: each is tried, by the DDL of its
 * population's indexes (its predicate at the same offset), on an empty copy of the record table
 * named as it in the session's temporary schema, with the most columns a population's index can
 * have (the row grows with its columns). Where that index fits, so does every index of the
 * population, those of indexes the steward declares later included. `tx` is a transaction the
 * caller always rolls back (each predicate is tried under a savepoint, and undone).
 */
export async function unindexablePredicates(
  tx: { query(sql: string): Promise<unknown> },
  slug: string,
  predicates: readonly string[],
): Promise<Set<string>> {
  const unindexable = new Set<string>();
  if (!predicates.length) return unindexable;
  const table = `${quoteIdent('pg_temp')}.${quoteIdent(slug)}`;
  await tx.query(`CREATE TEMPORARY TABLE ${quoteIdent(slug)} (LIKE ${recordTable(slug)}) ON COMMIT DROP`);
  const columns = Array<string>(MAX_POPULATION_INDEX_COLUMNS).fill(quoteIdent('_rid')).join(', ');
  for (const predicate of new Set(predicates)) {
    await tx.query('SAVEPOINT population_probe');
    try {
      await tx.query(
        partialIndexSql(
          `CREATE INDEX ${quoteIdent(`${slug.slice(0, 40)}_probe`)} ON ${table} (${columns})`,
          predicate,
        ),
      );
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (typeof code !== 'string' || !PROGRAM_LIMIT.test(code)) throw error;
      unindexable.add(predicate);
    }
    await tx.query('ROLLBACK TO SAVEPOINT population_probe');
  }
  return unindexable;
}

/** What the name of every index of a population has, and no other index's (see {@link populationIndexes}). */
export const POPULATION_INDEX_MARK = '_pp_';

/**
 * The indexes of an agreement's population: each index a page or a count under it may walk (the
 * default page order, the key, every index the steward declared), partial on its row filter
 * (`predicate`: the filter's SQL with its values written in, as the policy compiler writes it for a
 * statement, the record table's name for its alias). Planned for its values, a statement under that
 * filter then walks the population's records only, so that its time does not depend on how many
 * records the agreement leaves out between or beside them (docs/disclosure-control.md, "Timing"), and
 * reads no record it then drops. Named by a digest of their columns and the predicate: a new filter
 * has indexes of its own, and those of a filter no longer in force are dropped (see
 * DatasetService.dropPopulationIndexesExcept).
 */
export function populationIndexes(
  shape: RecordIndexShape,
  predicate: string,
  declared: readonly (readonly string[])[],
): RecordIndex[] {
  const byName = new Map<string, RecordIndex>();
  for (const fields of [...baseRecordIndexes(shape), ...declared]) {
    const columns = indexColumns(shape, fields);
    const name = `${shape.slug.slice(0, 40)}${POPULATION_INDEX_MARK}${digestOf([shape.slug, columns, predicate])}`;
    byName.set(name, namedRecordIndex(shape.slug, name, columns, predicate));
  }
  return [...byName.values()];
}

/**
 * What a dataset's records need indexed: the fields of one index (see {@link recordIndex}), or the
 * indexes of a population (see {@link populationIndexes}), by its row filter's predicate.
 */
export type IndexDemand = readonly string[] | { readonly predicate: string };

/** The DDL of one index of a record table (see {@link recordIndex}). */
export function recordIndexSql(
  shape: RecordIndexShape,
  fields: readonly string[],
  concurrently = false,
): string {
  return recordIndex(shape, fields).sql(concurrently);
}

/**
 * The indexes every record table has besides its primary key: the default page order (random row
 * id, then key) and the key in code point order (orderings by the key, its ranges and lookups).
 */
export function baseRecordIndexes(shape: RecordIndexShape): string[][] {
  return [[], [shape.keyField]];
}

/** Problems with declared indexes (each a list of field names), as messages a steward can act on. */
export function indexProblems(
  fields: readonly Pick<FieldDefinition, 'name'>[],
  indexes: readonly (readonly string[])[],
): string[] {
  const names = new Set(fields.map((f) => f.name));
  const problems: string[] = [];
  if (indexes.length > MAX_DECLARED_INDEXES) problems.push(`at most ${MAX_DECLARED_INDEXES} indexes`);
  indexes.forEach((index, i) => {
    if (!Array.isArray(index) || index.length < 1 || index.length > MAX_INDEX_COLUMNS) {
      problems.push(`indexes[${i}] must name 1 to ${MAX_INDEX_COLUMNS} fields`);
      return;
    }
    index.forEach((name, j) => {
      if (typeof name !== 'string' || !names.has(name)) {
        problems.push(`indexes[${i}][${j}] must name one of the fields`);
      }
    });
  });
  return problems;
}

/** How long a build waits before trying again for an index another build holds. */
const INDEX_LOCK_RETRY_MS = 100;

/** What {@link buildRecordIndex} did for an index. */
export type IndexOutcome = 'present' | 'built' | 'rebuilt';

/**
 * Builds one index of a record table on `client` (outside a transaction), concurrently, unless it is
 * there and valid. An index whose concurrent build failed earlier (PostgreSQL leaves it in the
 * catalog, invalid, and `IF NOT EXISTS` would keep it so) is dropped and built again. One build per
 * index at a time, whichever instance asks (a session advisory lock): an index found invalid under
 * the lock is a failed build, never one still under way. The one path of every index the broker
 * builds on a table that may hold records.
 */
export async function buildRecordIndex(client: PoolClient, index: RecordIndex): Promise<IndexOutcome> {
  const lock = [`record index ${index.qualified}`];
  // Tried, not waited for inside a statement: a statement waiting for the lock holds a snapshot, and
  // the holder's concurrent build waits for every such snapshot to end (a deadlock).
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`,
      lock,
    );
    if (rows[0].locked) break;
    await new Promise((resolve) => setTimeout(resolve, INDEX_LOCK_RETRY_MS));
  }
  try {
    const { rows } = await client.query<{ valid: boolean }>(
      `SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass($1)`,
      [index.qualified],
    );
    if (rows[0]?.valid) return 'present';
    if (rows[0]) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${index.qualified}`);
    await client.query(index.sql(true));
    return rows[0] ? 'rebuilt' : 'built';
  } finally {
    await client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, lock);
  }
}
