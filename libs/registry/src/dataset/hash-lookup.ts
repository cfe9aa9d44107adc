import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import type { WritableDataset } from './dataset.service';
import { BackgroundBuilds, Database, LOGGER } from '@broker/core';
import {
  type DatasetShape,
  PolicyError,
  type RowFilter,
  FieldTransform,
  type HmacKeyParam,
  MAX_FIRST,
  type ReleasedField,
  type SqlParams,
  columnRef,
  keyPrefixOf,
  keyPrefixSql,
  keyPrefixesSql,
  populationOf,
  quoteIdent,
  releasedExpression,
  releasedField,
  rowFilterFields,
  populationPredicate,
  allows,
  type CompiledGrant,
  type DataAbility,
} from '@broker/policy';
import { recordTable } from './record-table';
import { type QueryRows, staleTables, versionsInForce } from './versions-in-force';

/**
 * One lookup table of a HASH name (migration hash-key-index): the agreement whose key hashes, the
 * dataset, the source field hashed, and the population it files (migration hash-key-population: a
 * digest of the row filter it admits records by, see {@link populationOf}; '' or absent for every
 * record).
 */
export interface HashTable {
  agreementId: string;
  datasetId: string;
  field: string;
  population?: string;
}

/**
 * The condition on the record `alias` of a table's population, as SQL after `AND`, or '' for every
 * record: its row filter, written in (see rowFilterPredicate), so that a build or an upkeep reads the
 * population's records through its partial indexes. Throws PolicyError when the filter no longer fits
 * the dataset.
 */
function inPopulation(rowFilter: RowFilter | null | undefined, shape: DatasetShape, alias: string): string {
  const admitted = populationPredicate(rowFilter, shape, alias);
  return admitted === null ? '' : ` AND ${admitted}`;
}

/** What {@link HashLookupIndex.want} needs to build a table: the statement's own pieces. */
export interface HashTableWanted {
  agreementId: string;
  shape: DatasetShape;
  released: ReleasedField;
  /** The agreement's key: a parameter of the build's statement, never written into any object. */
  hmacKey: Buffer;
  /** The grant's row filter: the table files the records it admits only (absent or null: every record). */
  rowFilter?: RowFilter | null;
}

/** How often, at most, one broker checks a table asked for (built, and whether it serves). */
export const HASH_LOOKUP_CHECK_MS = 30_000;

/** How often each broker drops the tables no grant in force reads (see {@link HashLookupIndex.sweep}). */
export const HASH_LOOKUP_SWEEP_MS = 10 * 60_000;

/** The fewest records a value must have to be common (see {@link hashLookupCommonAbove}). */
export const HASH_LOOKUP_MAX_PER_VALUE = 100;

/**
 * A value with more records than this, among a field's `records`, is common for a page of `first`
 * rows: a filter on it finds them faster by hashing the records in the page's own order until the
 * page is full than through the table. Through the table, a value of n records costs n fetches and
 * checks; hashing in the page's order, a page of `first` rows costs about first·records/n HMACs,
 * and a fetch with its check about 2.5 of them: the two meet near n = 2·√(records·first/10) (2,000
 * of a million records for a page of 10, 20,000 for a page of 1,000), and never below
 * {@link HASH_LOOKUP_MAX_PER_VALUE}. A count or an export (`first` infinite) reads every record of
 * the value: through the table whenever it files them. A page in the row id's order (no `orderBy`)
 * costs the table less: its row ids are read in that order and only the page's records are fetched,
 * so an entry costs about a tenth of a fetch, as if the page were ten times as large (see
 * {@link hashLookupServesUpTo}).
 */
export function hashLookupCommonAbove(records: number, first = 10): number {
  return Math.max(HASH_LOOKUP_MAX_PER_VALUE, Math.ceil(2 * Math.sqrt((records * first) / 10)));
}

/**
 * The most records the asked common values may have for a filter on them to read the table, for a
 * page of `first` rows (infinite: a count or an export), in the row id's order or another (see
 * {@link hashLookupCommonAbove}; measured on a million records, a page of 10 of a value of 10,000
 * records takes 2.9–4.6 ms through the table in the row id's order, 2.4–2.7 ms hashing).
 */
export function hashLookupServesUpTo(records: number, first: number, inRowIdOrder: boolean): number {
  if (first === Number.POSITIVE_INFINITY) return first;
  return hashLookupCommonAbove(records, inRowIdOrder ? first * 10 : first);
}

/**
 * A value with more records than this is not filed, and every filter on it hashes: it is common even
 * for the largest page ({@link MAX_FIRST} rows; 63,246 of a million records), or it has more than
 * 0.4 of the records, so that fetching them all through the table would cost more than hashing every
 * record, even for a count (480 of 1,200). A rare value is always filed.
 */
export function hashLookupFiledUpTo(records: number): number {
  return Math.max(
    hashLookupCommonAbove(records),
    Math.min(hashLookupCommonAbove(records, MAX_FIRST), Math.floor(0.4 * records)),
  );
}

/** Something that runs a statement: a pg client, a TypeORM manager or query runner. */
interface Queryable {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * Whether a table serves filters, as SQL on its scope row `alias`: its `serves`; for a table built by
 * a broker of the release before common values, which writes none, its `useful` (that release's
 * meaning, which newer brokers keep writing for it to read: the table files every record of every
 * value; see migration hash-key-serves).
 */
function servesSql(alias: string): string {
  return `COALESCE(${alias}.serves, ${alias}.useful)`;
}

/**
 * Whether a table is built and serves (no row: not built); its common values, each as its prefix,
 * its records and whether the table files them (`hash_key_sized`) or not (`hash_key_common`, which
 * lists only those, as brokers of every version read it); and the field's records with a value (those
 * filed and those of the values not filed).
 */
const SCOPE_SERVES = `
  SELECT ${servesSql('hs')} AS serves, hs.population,
         COALESCE((SELECT json_agg(json_build_array(c.prefix::text, c.records, c.filed)) FROM (
                     SELECT hc.prefix, hc.records, false AS filed FROM hash_key_common hc WHERE hc.scope_id = hs.id
                     UNION ALL
                     SELECT hz.prefix, hz.records, true FROM hash_key_sized hz WHERE hz.scope_id = hs.id) c),
                  '[]') AS common,
         hs.records + (SELECT COALESCE(sum(hc.records), 0) FROM hash_key_common hc
                        WHERE hc.scope_id = hs.id) AS records
    FROM hash_key_scope hs WHERE hs.agreement_id = $1 AND hs.dataset_id = $2 AND hs.field = $3`;

/** What {@link SCOPE_SERVES} reads. */
interface ScopeRow {
  serves: boolean;
  population: string;
  common: [prefix: string, records: number, filed: boolean][];
  records: string;
}

/** What a broker knows of a table it saw built and serving. */
interface Serving {
  table: HashTable;
  /** The field's records with a value. */
  records: number;
  /** Its common values, by prefix: their records, and whether the table files them. */
  common: ReadonlyMap<string, { records: number; filed: boolean }>;
}

/** A table's identity as one string (a map key). */
function tableId(table: HashTable): string {
  return `${table.agreementId} ${table.datasetId} ${table.field} ${table.population ?? ''}`;
}

/** The table of a HASH name of `agreementId`'s grant on `shape`, of the population `rowFilter` admits. */
export function hashTableOf(
  agreementId: string,
  shape: Pick<DatasetShape, 'id'>,
  released: ReleasedField,
  rowFilter?: RowFilter | null,
): HashTable {
  return { agreementId, datasetId: shape.id, field: released.source, population: populationOf(rowFilter) };
}

/**
 * The lookup tables a statement can read under an agreement version (compiled, see
 * compileAgreement): for each grant, each HASH name its ability lets a request name for a purpose of
 * the version, the table of the name's source field and the grant's population, as the data plane
 * names it ({@link hashTableOf}, through hashOptions). Any other table of the agreement is one no
 * statement reads: no grant in force filters by its hashes ({@link HashLookupIndex.sweep} drops it).
 */
export function hashTablesOf(agreement: {
  id: string;
  purposes: readonly string[];
  grants: ReadonlyMap<string, CompiledGrant>;
  ability: DataAbility;
}): HashTable[] {
  const tables: HashTable[] = [];
  for (const [datasetId, grant] of agreement.grants) {
    for (const released of grant.released.values()) {
      if (released.transform !== FieldTransform.HASH) continue;
      if (
        !agreement.purposes.some((p) => allows(agreement.ability, 'aggregate', datasetId, p, [released.name]))
      )
        continue;
      tables.push(hashTableOf(agreement.id, { id: datasetId }, released, grant.rowFilter));
    }
  }
  return tables;
}

/**
 * The tables no statement reads ({@link staleTables}), as SQL on `hash_key_scope hs` and its
 * `agreement a`: what the versions in force read is {@link hashTablesOf}.
 */
async function staleHashTables(query: QueryRows): Promise<{ sql: string; params: unknown[] }> {
  const versions = await versionsInForce(query);
  const tables = versions.flatMap((v) => (v.compiled ? hashTablesOf(v.compiled) : []));
  return staleTables(versions, tables, 'hs', [
    ['agreement_id', 'uuid', (t) => t.agreementId],
    ['dataset_id', 'uuid', (t) => t.datasetId],
    ['field', 'text', (t) => t.field],
    ['population', 'text', (t) => t.population ?? ''],
  ]);
}

/**
 * Drops every lookup table of a dataset's HASH names, in the transaction of an ingestion too large
 * to keep them (see {@link keepHashLookups}), after its lock on the record table: a build takes a
 * SHARE lock on the same table, so either it waits for the change and hashes the records as
 * changed, or the change waits for it and then finds its table here to drop. A filter hashes every
 * record again until the next is built.
 */
async function forgetHashLookups(on: Queryable, datasetId: string): Promise<void> {
  await on.query(`DELETE FROM hash_key_scope WHERE dataset_id = $1`, [datasetId]);
}

/** A statement that answers rows: a TypeORM entity manager. */
interface RowQueryable {
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

/**
 * What a retention batch's DELETE returns for the lookup tables of its dataset's HASH names, in its
 * transaction, before its DELETE: `returning`, the columns to add to its `RETURNING` (the record
 * table's alias `t`), say which destroyed records had a value in each tabled field; `counts`, a
 * column to select once the DELETE is a CTE named `gone`, counts them; `destroyed` reads that
 * column from any row of the answer, for {@link hashLookupsDestroyed}, which drops a table built
 * after this read (by another broker, before the DELETE's lock) too.
 */
export async function hashLookupsDestroying(
  on: RowQueryable,
  datasetId: string,
): Promise<{ returning: string; counts: string; destroyed(row: { valued?: string }): Map<string, number> }> {
  const fields = (
    await on.query<{ field: string }>(
      `SELECT DISTINCT field FROM hash_key_scope WHERE dataset_id = $1 ORDER BY field`,
      [datasetId],
    )
  ).map((r) => r.field);
  if (!fields.length) return { returning: '', counts: '', destroyed: () => new Map() };
  return {
    returning: fields.map((f, i) => `, t.${quoteIdent(f)} IS NOT NULL AS valued_${i}`).join(''),
    counts: `, (SELECT json_build_array(${fields.map((_, i) => `count(*) FILTER (WHERE valued_${i})`).join(', ')})
                  FROM gone)::text AS valued`,
    destroyed: (row) => {
      const counts = JSON.parse(row.valued ?? '[]') as number[];
      return new Map(fields.map((f, i) => [f, counts[i] ?? 0]));
    },
  };
}

/**
 * A retention batch destroyed records of `datasetId`: `destroyed` holds, per field with a lookup
 * table when the batch began, how many of them had a value (see {@link hashLookupsDestroying}). In
 * the caller's transaction, after its DELETE, whose lock on the record table a build waits for. A
 * table files a destroyed record's value as its HMAC's first 64 bits beside its row id, which the
 * records destroyed (`destroyed_record`) name with their subject: kept, an entry would let whoever
 * holds the database and the agreement's key try every value of a low-entropy field (an SSN, a date
 * of birth) against it. So every table of a field in which a destroyed record had a value is dropped
 * with its entries, as is one built since the batch began (nothing says what it filed) and one found
 * not worth a table; each is built again in the background after the next filter. Only a table of a
 * field none of the destroyed records had a value in stays.
 */
export async function hashLookupsDestroyed(
  on: Queryable,
  datasetId: string,
  destroyed: ReadonlyMap<string, number>,
): Promise<void> {
  const untouched = [...destroyed].filter(([, n]) => n === 0).map(([field]) => field);
  await on.query(
    `DELETE FROM hash_key_scope hs
      WHERE hs.dataset_id = $1 AND (NOT ${servesSql('hs')} OR NOT (hs.field = ANY ($2::text[])))`,
    [datasetId, untouched],
  );
}

/**
 * Most records one ingestion may change and still keep its dataset's lookup tables up to date in
 * its own transaction (an HMAC per record and table, about 7 µs each: 0.7 s a table at this size).
 * A larger batch drops them instead, and they are built again in the background after the next
 * filter, as after the first.
 */
export const HASH_LOOKUP_MAINTAIN_MAX_ROWS = 100_000;

/** A pg client in a transaction. */
interface Client {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

/** What {@link keepHashLookups} did with a dataset's lookup tables for one change of its records. */
export interface HashLookupUpkeep {
  /** Whether it dropped them (the change is too large); the ingesting broker then forgets them. */
  dropped: boolean;
  /**
   * Before the records `staging` names by key are updated: takes each one whose hashed field is to
   * change out of the tables, under its old value, and each one that is to take a new row id
   * (`rekeyed`: a condition on the record `t` and its staged row `s`; a record that moves to another
   * subject), under its old row id, which no record has once the update is applied. Either is filed
   * again by {@link afterChange}.
   */
  beforeUpdate(staging: string, rekeyed?: string): Promise<void>;
  /**
   * Once the change is applied: files each record `staging` names by key (null: every record, the
   * first records of an empty table) under its value now, where it is not filed so already (its new
   * records, and those whose value changed).
   */
  afterChange(staging: string | null): Promise<void>;
}

const NO_UPKEEP: HashLookupUpkeep = {
  dropped: false,
  beforeUpdate: () => Promise.resolve(),
  afterChange: () => Promise.resolve(),
};

/**
 * Keeps the lookup tables of `dataset` true across a change of `rows` of its records, made by the
 * caller's transaction under its lock on the record table (ingestion's SHARE ROW EXCLUSIVE, which a
 * build's SHARE lock conflicts with: no build is under way, nor starts, until it commits). The tables
 * are read `FOR KEY SHARE`, so that no sweep drops one halfway. A change larger than `max` drops them
 * (see {@link HASH_LOOKUP_MAINTAIN_MAX_ROWS}), and so is dropped a table whose field or agreement key
 * is gone: a table is complete or it is not there, so a filter through it never misses a record.
 * Each statement also moves the scope's `records` by the entries it filed or took out, so that it
 * stays the number of entries the table files (see {@link hashLookupsDestroyed}).
 */
export async function keepHashLookups(
  client: Client,
  dataset: WritableDataset,
  rows: number,
  max = HASH_LOOKUP_MAINTAIN_MAX_ROWS,
): Promise<HashLookupUpkeep> {
  const { rows: scopes } = await client.query<{
    id: number;
    field: string;
    serves: boolean;
    key: Buffer | null;
    row_filter: RowFilter | null;
  }>(
    `SELECT hs.id, hs.field, ${servesSql('hs')} AS serves, s.hmac_key AS key, hs.row_filter
       FROM hash_key_scope hs LEFT JOIN agreement_secret s ON s.agreement_id = hs.agreement_id
      WHERE hs.dataset_id = $1
      ORDER BY hs.id FOR KEY SHARE OF hs`,
    [dataset.id],
  );
  if (!scopes.length) return NO_UPKEEP;
  if (rows > max) {
    await forgetHashLookups(client, dataset.id);
    return { ...NO_UPKEEP, dropped: true };
  }
  const shape: DatasetShape = { ...dataset, typeName: '', subjectField: null };
  const kept: {
    id: number;
    column: string;
    hashed: string;
    hashedOther: string;
    key: Buffer;
    /** The population's condition on the record `t` (see inPopulation), and the columns it reads. */
    admitted: string;
    filterColumns: string[];
  }[] = [];
  const gone: number[] = [];
  for (const scope of scopes) {
    const field = dataset.fields.find((f) => f.name === scope.field);
    // A field found not worth a table is judged again after the change, at its next filter; one
    // whose row filter no longer fits the dataset too.
    let admitted: string;
    try {
      admitted = inPopulation(scope.row_filter, shape, 't');
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      gone.push(scope.id);
      continue;
    }
    if (!scope.serves || !field || !scope.key) {
      gone.push(scope.id);
      continue;
    }
    const released = releasedField(field, FieldTransform.HASH);
    kept.push({
      id: scope.id,
      column: quoteIdent(field.name),
      hashed: releasedExpression(released, shape, 't', '$1::bytea'),
      hashedOther: releasedExpression(released, shape, 'r', '$1::bytea'),
      key: scope.key,
      admitted,
      filterColumns: scope.row_filter ? rowFilterFields(scope.row_filter).map(quoteIdent) : [],
    });
  }
  if (gone.length) await client.query(`DELETE FROM hash_key_scope WHERE id = ANY ($1)`, [gone]);
  if (!kept.length) return NO_UPKEEP;
  const records = recordTable(dataset.slug);
  const key = quoteIdent(dataset.keyField);
  const named = (staging: string | null) =>
    staging === null ? `${records} t` : `${records} t JOIN ${staging} s ON t.${key} = s.${key}`;
  return {
    dropped: false,
    async beforeUpdate(staging, rekeyed) {
      for (const scope of kept) {
        // A record leaves the population when a field its row filter reads changes: taken out, it is
        // filed again by afterChange if the filter still admits it.
        const changed = [scope.column, ...scope.filterColumns]
          .map((column) => `t.${column} IS DISTINCT FROM s.${column}`)
          .join(' OR ');
        // An entry is a (prefix, row id) pair, which another record may share (row ids are random,
        // not unique): it stays while another record of that row id still has a value of that prefix
        // (hashed only then, by the row id's index), so that no record loses its entry; an entry
        // kept for a record that changes too only costs a fetch, which the filter's check discards.
        await client.query(
          `WITH unfiled AS (
             DELETE FROM hash_key hk USING (
               SELECT ${keyPrefixSql(scope.hashed)} AS prefix, t."_rid" AS rid, t.${key} AS k FROM ${named(staging)}
                WHERE ${rekeyed ? `(${changed} OR (${rekeyed}))` : `(${changed})`}) o
              WHERE hk.scope_id = $2 AND hk.prefix = o.prefix AND hk.rid = o.rid
                AND NOT EXISTS (SELECT 1 FROM ${records} r
                                 WHERE r."_rid" = o.rid AND r.${key} <> o.k AND r.${scope.column} IS NOT NULL
                                   AND ${keyPrefixSql(scope.hashedOther)} = o.prefix)
             RETURNING 1)
           UPDATE hash_key_scope SET records = records - (SELECT count(*) FROM unfiled) WHERE id = $2`,
          [scope.key, scope.id],
        );
      }
    },
    async afterChange(staging) {
      for (const scope of kept) {
        // Each record hashed once (OFFSET 0 keeps the prefix computed below the anti-join), and only
        // those with a value (a test of the column, which the planner may push into any scan).
        await client.query(
          `WITH filed AS (
             INSERT INTO hash_key (scope_id, prefix, rid)
             SELECT $2, n.prefix, n.rid FROM (
               SELECT ${keyPrefixSql(scope.hashed)} AS prefix, t."_rid" AS rid FROM ${named(staging)}
                WHERE t.${scope.column} IS NOT NULL${scope.admitted} OFFSET 0) n
              WHERE NOT EXISTS (SELECT 1 FROM hash_key hk WHERE hk.scope_id = $2 AND hk.prefix = n.prefix AND hk.rid = n.rid)
                AND NOT EXISTS (SELECT 1 FROM hash_key_common hc WHERE hc.scope_id = $2 AND hc.prefix = n.prefix)
             RETURNING 1)
           UPDATE hash_key_scope SET records = records + (SELECT count(*) FROM filed) WHERE id = $2`,
          [scope.key, scope.id],
        );
      }
    },
  };
}

/**
 * A condition every record whose HASH value of `released` is one of `values` (a `text[]` placeholder)
 * meets (see ReleasedNameOptions.hashAmong): its row id is among the records the table files under
 * those values' first 64 bits, when the table is built and serves; otherwise among the records whose
 * HMAC is one of them, each record hashed. PostgreSQL runs one of the two branches (one-time
 * filters on the same scope row, in the statement's own snapshot): a table dropped since the broker
 * last saw it costs a slower answer, never a wrong one. The caller's filter stays beside it and
 * checks every record found whole.
 */
export function hashLookupSql(args: {
  params: Pick<SqlParams, 'add'>;
  agreementId: string;
  shape: DatasetShape;
  released: ReleasedField;
  hmacKey: HmacKeyParam;
  tableAlias: string;
  values: string;
  /** The grant's row filter: only a table of its population is read (see populationOf). */
  rowFilter?: RowFilter | null;
}): string {
  const { params, shape, released, values } = args;
  if (released.transform !== FieldTransform.HASH) throw new Error('a lookup table is for a HASH name');
  // The table serves only values it files: none of the asked values may be one it does not file. A
  // table of another population (a version's filter before this one's) files other records.
  const scope = `SELECT hs.id FROM hash_key_scope hs
     WHERE hs.agreement_id = ${params.add(args.agreementId, 'uuid')} AND hs.dataset_id = ${params.add(shape.id, 'uuid')}
       AND hs.field = ${params.add(released.source, 'text')} AND ${servesSql('hs')}
       AND hs.population = ${params.add(populationOf(args.rowFilter), 'text')}
       AND NOT EXISTS (SELECT 1 FROM hash_key_common hc WHERE hc.scope_id = hs.id AND hc.prefix = ANY (${keyPrefixesSql(values)}))`;
  const hashed = releasedExpression(released, shape, 'hr', args.hmacKey);
  // Without the table, the population's records are hashed, never the others: PostgreSQL checks the
  // row filter (cheap) before the HMAC, and the array holds only the population's row ids. Hashing
  // every record, it would hold those outside too, each then looked up in the page's index (found
  // in none of the population's), in a time that grows with how many a value has outside. OFFSET 0
  // keeps the one-time filter above the scan: a parallel scan's workers would otherwise be started
  // only for each to find it false.
  return `(${args.tableAlias}."_rid" = ANY (ARRAY(
      SELECT hk.rid FROM hash_key hk WHERE hk.scope_id = (${scope}) AND hk.prefix = ANY (${keyPrefixesSql(values)})
      UNION ALL
      SELECT h._rid FROM (SELECT hr."_rid" FROM ${recordTable(shape.slug)} hr
                           WHERE ${hashed} = ANY (${values})${inPopulation(args.rowFilter, shape, 'hr')} OFFSET 0) h
       WHERE NOT EXISTS (${scope}))))`;
}

/** What a build found: how many records hash, how many distinct values, and whether it filed them. */
export interface HashTableBuilt {
  records: number;
  distinctValues: number;
  /** Whether the table serves filters (its scope's `serves`): false for a field with no value to file. */
  useful: boolean;
  /** Values too many records share for a page of 10 (see {@link hashLookupCommonAbove}), filed or not. */
  commonValues: number;
  /** Those of them too common even for the largest page (see {@link hashLookupFiledUpTo}): not filed. */
  unfiledValues: number;
}

/**
 * The lookup tables of filters on HASH names (migration hash-key-index): for one agreement, one
 * dataset and one field, each record's row id filed under the first 64 bits of its HMAC under the
 * agreement's key. A filter `eq` or `in` on the hash then finds its records by index and hashes only
 * them, where without it every record of the dataset is hashed: about a second per million.
 *
 * Built only for the names analysts filter by (minimum necessary), in the background after the first
 * such filter ({@link want}), and used by the data plane only once this broker has seen it built
 * and serving ({@link serves}); the statement still checks, in its own snapshot, that it is there.
 * Kept up to date by ingestion, in its own transaction ({@link keepHashLookups}), and across
 * retention ({@link hashLookupsDestroyed}); dropped by an ingestion of more than
 * {@link HASH_LOOKUP_MAINTAIN_MAX_ROWS} records, by retention's destruction of a record with a value
 * in its field (no entry of a destroyed record is kept), and, by every broker every
 * {@link HASH_LOOKUP_SWEEP_MS}, when no grant in force reads it ({@link sweep}: its agreement no
 * longer in force, or its version in force no longer releases the field as a HASH name to a purpose,
 * or admits another population).
 * The agreement's key is a parameter of the build's and the upkeep's statements: it is in no table,
 * index or other catalog object.
 */
@Injectable()
export class HashLookupIndex implements OnModuleInit, OnApplicationShutdown {
  private readonly builds = new BackgroundBuilds(HASH_LOOKUP_CHECK_MS);
  /** The tables this broker last saw built and serving, by id, with what it knows of their values. */
  private readonly serving = new Map<string, Serving>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    const sweep = () =>
      void this.sweep().catch((error: unknown) =>
        this.logger.warn(
          { err: error },
          'HASH lookup tables no grant in force reads not dropped; the next sweep retries',
        ),
      );
    sweep();
    this.sweeper = setInterval(sweep, HASH_LOOKUP_SWEEP_MS);
    this.sweeper.unref();
  }

  /**
   * Whether a filter on the `asked` values, for a page of `first` rows (infinite: a count or an
   * export, which read every record of them) in the row id's order or another, reads `table`: this
   * broker last saw it built and serving, it files every asked value, and the common ones among them
   * have few enough records for the page (see {@link hashLookupServesUpTo}); otherwise the filter
   * hashes in the page's order.
   */
  serves(
    table: HashTable,
    asked: readonly string[] = [],
    first = Number.POSITIVE_INFINITY,
    inRowIdOrder = false,
  ): boolean {
    const serving = this.serving.get(tableId(table));
    if (!serving) return false;
    // Most tables list no common value: then no asked value's prefix is computed on the request path.
    if (!serving.common.size) return true;
    let common = 0;
    for (const value of asked) {
      const listed = serving.common.get(keyPrefixOf(value) ?? '');
      if (!listed) continue;
      if (!listed.filed) return false;
      common += listed.records;
    }
    return common === 0 || common <= hashLookupServesUpTo(serving.records, first, inRowIdOrder);
  }

  /**
   * A filter on a HASH name was answered: its table is built if it is not, in the background, and
   * what this broker knows of it is renewed. At most once every {@link HASH_LOOKUP_CHECK_MS} per
   * table; never throws, never waits.
   */
  want(wanted: HashTableWanted): void {
    const table = hashTableOf(wanted.agreementId, wanted.shape, wanted.released);
    this.builds.ask(
      tableId(table),
      () => this.build(wanted),
      (error) =>
        this.logger.warn({ err: error, ...table }, 'HASH lookup table not built; the next filter retries'),
    );
  }

  /**
   * Builds the table of `wanted` unless it is built, and renews what this broker knows of it: resolves
   * to what the build found, or null when it was there already.
   */
  async build(wanted: HashTableWanted): Promise<HashTableBuilt | null> {
    const table = hashTableOf(wanted.agreementId, wanted.shape, wanted.released, wanted.rowFilter);
    const started = Date.now();
    const key = [table.agreementId, table.datasetId, table.field];
    const outcome = await this.db.transaction(async (tx) => {
      // Read first, so that a check of a table that is there locks and writes nothing.
      const [there] = await tx.query<ScopeRow>(SCOPE_SERVES, key);
      if (there?.population === table.population) return { scope: there, built: null };
      // Ingestion and retention change records under a lock that conflicts with this one: a table
      // is built from records no change is halfway through.
      await tx.query(`LOCK TABLE ${recordTable(wanted.shape.slug)} IN SHARE MODE`);
      // A table of another population (the filter of a version no longer in force, or a table of
      // every record built before populations) goes, with its entries; this one is built instead.
      await tx.query(
        `DELETE FROM hash_key_scope
          WHERE agreement_id = $1 AND dataset_id = $2 AND field = $3 AND population <> $4`,
        [...key, table.population],
      );
      const built = await buildTable(tx, wanted, table);
      // Built now, or meanwhile (by another broker, or before this lock was granted).
      const [scope] = await tx.query<ScopeRow>(SCOPE_SERVES, key);
      return { scope, built };
    });
    const id = tableId(table);
    const { scope } = outcome;
    if (scope?.serves && scope.population === table.population) {
      const common = new Map(scope.common.map(([prefix, records, filed]) => [prefix, { records, filed }]));
      this.serving.set(id, { table, records: Number(scope.records), common });
    } else this.serving.delete(id);
    const { built } = outcome;
    if (!built) return null;
    // Visibility for index-only reads of the new rows (and the planner's statistics).
    if (built.useful) await this.db.query(`VACUUM (ANALYZE) hash_key`);
    this.logger.info({ ...table, ...built, ms: Date.now() - started }, 'HASH lookup table built');
    return built;
  }

  /**
   * The records of `datasetId` changed through this broker and the change dropped its tables: its
   * filters hash every record again at once, and the next one asks for its table anew. Other brokers
   * learn it at their next check of the table.
   */
  forget(datasetId: string): void {
    for (const [id, { table }] of [...this.serving]) {
      if (table.datasetId !== datasetId) continue;
      this.serving.delete(id);
      this.builds.forget(id);
    }
  }

  /**
   * Drops the tables no statement can read (minimum necessary: no entries are kept that nobody can
   * filter by): those of agreements no longer in force (revoked, or their version ended), and those
   * the version in force does not read ({@link hashTablesOf}: its grant on the dataset removed, the
   * field no longer released as a HASH name, or the row filter changed). Resolves to how many went.
   * A table an ingestion is keeping up to date (its scope row locked) is left to the next sweep: the
   * sweep never waits, so it never deadlocks with an ingestion that locked the dataset's tables in
   * another order.
   */
  async sweep(): Promise<number> {
    const stale = await staleHashTables((sql, params) => this.db.query(sql, params));
    const gone = await this.db.query<{ id: number }>(
      `DELETE FROM hash_key_scope WHERE id IN (
         SELECT hs.id FROM hash_key_scope hs JOIN agreement a ON a.id = hs.agreement_id
          WHERE ${stale.sql}
            FOR UPDATE OF hs SKIP LOCKED)
       RETURNING id`,
      stale.params,
    );
    return gone.length;
  }

  /** Starts no more builds; one under way rolls back with its connection. */
  onApplicationShutdown(): void {
    this.builds.close();
    if (this.sweeper) clearInterval(this.sweeper);
  }
}

/**
 * Writes a table's scope row and, where it serves, its common values and its records, in the
 * caller's transaction (which holds the record table's SHARE lock). Another broker building the same
 * table meanwhile holds its scope row's unique key: this waits for it and then writes nothing (null).
 *
 * A value more than {@link hashLookupCommonAbove} records share (for a page of 10) is common: its
 * prefix and records are listed in `hash_key_sized`, so that a filter on it for a small page hashes
 * in the page's order. Its records are filed all the same, for larger pages, counts and exports,
 * unless it is common even for the largest page ({@link hashLookupFiledUpTo}): then they are not,
 * it is listed in `hash_key_common` instead, and every filter on it hashes. A field with no value to
 * file at all (a sex) gets no table (`serves` false); one with no value yet gets one, every value it
 * later gets filed.
 */
async function buildTable(
  tx: { query<T>(sql: string, params?: unknown[]): Promise<T[]> },
  wanted: HashTableWanted,
  table: HashTable,
): Promise<HashTableBuilt | null> {
  const records = recordTable(wanted.shape.slug);
  const source = wanted.released.source;
  // The key as the statements' bytea parameter ($1), as the data plane passes it.
  const hashed = (alias: string) => releasedExpression(wanted.released, wanted.shape, alias, '$1::bytea');
  // Only the population's records are counted and filed: those the grant's row filter admits.
  const admitted = inPopulation(wanted.rowFilter, wanted.shape, 't');
  // Counted on the raw values, which hash one to one, so that no record is hashed to count it.
  const column = columnRef('t', source);
  const perValue = `SELECT ${column} AS ${quoteIdent(source)}, count(*) AS n FROM ${records} t
     WHERE ${column} IS NOT NULL${admitted} GROUP BY ${column}`;
  const [counts] = await tx.query<{ records: string; distinct: string }>(
    `SELECT count(${column}) AS records, count(DISTINCT ${column}) AS distinct FROM ${records} t
      WHERE TRUE${admitted}`,
  );
  const found = { records: Number(counts.records), distinctValues: Number(counts.distinct) };
  const commonAbove = hashLookupCommonAbove(found.records);
  const filedUpTo = hashLookupFiledUpTo(found.records);
  const [{ filable }] = await tx.query<{ filable: string }>(
    `SELECT count(*) AS filable FROM (${perValue} HAVING count(*) <= $1) v`,
    [filedUpTo],
  );
  const useful = Number(filable) > 0 || found.distinctValues === 0;
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO hash_key_scope (agreement_id, dataset_id, field, records, distinct_values, useful, serves,
                                 population, row_filter)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)
     ON CONFLICT (agreement_id, dataset_id, field) DO NOTHING RETURNING id`,
    [
      table.agreementId,
      table.datasetId,
      table.field,
      found.records,
      found.distinctValues,
      useful,
      table.population ?? '',
      wanted.rowFilter ? JSON.stringify(wanted.rowFilter) : null,
    ],
  );
  if (!row) return null;
  if (!useful) return { ...found, useful, commonValues: 0, unfiledValues: 0 };
  // The common values, each hashed once: those filed with their records (`hash_key_sized`), the
  // others in `hash_key_common`, which every version's ingestion skips. Two values of one prefix are
  // filed only if both are.
  const [common] = await tx.query<{ n: string; unfiled: string }>(
    `WITH grouped AS (
       SELECT prefix, sum(n) AS records, bool_and(n <= $4) AS filed FROM (
         SELECT ${keyPrefixSql(hashed('v'))} AS prefix, n FROM (${perValue} HAVING count(*) > $3) v) c
        GROUP BY prefix),
     unfiled AS (
       INSERT INTO hash_key_common (scope_id, prefix, records)
       SELECT $2, prefix, records FROM grouped WHERE NOT filed RETURNING 1),
     sized AS (
       INSERT INTO hash_key_sized (scope_id, prefix, records)
       SELECT $2, prefix, records FROM grouped WHERE filed RETURNING 1)
     SELECT (SELECT count(*) FROM unfiled) + (SELECT count(*) FROM sized) AS n,
            (SELECT count(*) FROM unfiled) AS unfiled`,
    [wanted.hmacKey, row.id, commonAbove, filedUpTo],
  );
  const commonValues = Number(common.n);
  const unfiledValues = Number(common.unfiled);
  // Brokers of the release before common values read a table whenever its `useful` is true, as one
  // that files every value (migration hash-key-serves): one that leaves a value out says false to
  // them, so that they hash every record for it, and serves the others through `serves`.
  if (unfiledValues) await tx.query(`UPDATE hash_key_scope SET useful = false WHERE id = $1`, [row.id]);
  // Every record of a value filed, hashed once (a value too common to file left out by its raw value
  // first, so that a skewed field hashes only the records it files); the scope's records then
  // counts the entries.
  const filedOnly = unfiledValues
    ? `AND NOT EXISTS (SELECT 1 FROM (${perValue} HAVING count(*) > $3) c
                        WHERE c.${quoteIdent(source)} = ${column})`
    : '';
  await tx.query(
    `WITH filed AS (
       INSERT INTO hash_key (scope_id, prefix, rid)
       SELECT $2, ${keyPrefixSql(hashed('t'))}, t."_rid" FROM ${records} t
        WHERE ${column} IS NOT NULL${admitted} ${filedOnly}
       RETURNING 1)
     UPDATE hash_key_scope SET records = (SELECT count(*) FROM filed) WHERE id = $2`,
    unfiledValues ? [wanted.hmacKey, row.id, filedUpTo] : [wanted.hmacKey, row.id],
  );
  return { ...found, useful, commonValues, unfiledValues };
}
