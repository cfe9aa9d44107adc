import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { BackgroundBuilds, Database, LOGGER } from '@broker/core';
import {
  type VersionInForce,
  agreementInForceSql,
  recordTable,
  staleTables,
  versionsInForce,
} from '@broker/registry';
import {
  type DatasetShape,
  PolicyError,
  type RowFilter,
  personKeyPrefixSql,
  populationOf,
} from '@broker/policy';
import { lockDerived } from './linkage.store';
import { type PersonKeyTable, personKeyTablesOf, populationLinkedSql } from './person-key';

/** How often, at most, one broker checks that a table asked for is built for the run in force. */
export const PERSON_KEY_CHECK_MS = 30_000;

/** How often each broker drops the tables no grant in force reads (see {@link PersonKeyIndex.sweep}). */
export const PERSON_KEY_SWEEP_MS = 10 * 60_000;

/** Runs one statement and returns its rows (a transaction's, or a pg client's). */
type Rows = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/** A built table: which, and how many persons it holds. */
export type BuiltTable = PersonKeyTable & { persons: number };

/** A table's grant, scope, dataset and population: what tells it from every other table of a run. */
interface TableName {
  agreementId: string;
  scope: string;
  datasetId: string;
  population: string;
}

/** A table's identity as one string (a map key). */
const nameKey = (name: TableName) => `${name.agreementId} ${name.scope} ${name.datasetId} ${name.population}`;
const nameOf = (table: PersonKeyTable): TableName => ({
  agreementId: table.agreementId,
  scope: table.scope,
  datasetId: table.datasetId,
  population: populationOf(table.rowFilter),
});
const tableId = (table: PersonKeyTable) => nameKey(nameOf(table));

/** What a build needs of the dataset: its record table, its key and the fields a row filter reads. */
const SHAPE_OF = `
  SELECT d.id, d.slug, d.key_field AS "keyField",
         json_agg(json_build_object('name', f.name, 'type', f.type) ORDER BY f.position) AS fields
    FROM dataset d JOIN dataset_field f ON f.dataset_id = d.id
   WHERE d.id = $1 GROUP BY d.id`;

/**
 * Builds a lookup table for run `runId` in the caller's transaction, unless it is built: resolves to
 * the persons it holds, or null when it was there already (or its dataset is gone). Another
 * transaction building the same one meanwhile holds its row's unique key: this waits for it to end
 * and then writes nothing. Only the linked records of the table's population are filed: those its
 * grant's row filter admits (PolicyError when the filter no longer fits the dataset: no table).
 *
 * The record table is locked first (SHARE, as the HASH lookup tables' builds lock it): ingestion,
 * which keeps the tables up to date under a lock this one conflicts with, is not halfway through a
 * change, and changes nothing until this commits. Then `LINKAGE_CHUNKS_LOCK`, shared, ordered with
 * retention's batches (which delete the entries of the records they destroy, and lock the record
 * table before it): in this order, neither waits for the other while holding what the other needs.
 * `nowait`, in a run's transaction (which holds `LINKAGE_CHUNKS_LOCK` already): the record table's
 * lock is not waited for, and the table is left to the clean-up after the run.
 */
async function buildTable(
  query: Rows,
  runId: string,
  table: PersonKeyTable,
  nowait = false,
): Promise<number | null> {
  const [dataset] = await query<Pick<DatasetShape, 'id' | 'slug' | 'keyField' | 'fields'>>(SHAPE_OF, [
    table.datasetId,
  ]);
  if (!dataset) return null;
  const shape: DatasetShape = { ...dataset, typeName: '', subjectField: null };
  const records = recordTable(shape.slug);
  await query(`LOCK TABLE ${records} IN SHARE MODE${nowait ? ' NOWAIT' : ''}`);
  await lockDerived(query);
  const population = populationOf(table.rowFilter);
  const key = [runId, table.agreementId, table.scope, table.datasetId];
  // A table of another population (the filter of an earlier version) goes, with its entries; this
  // one is built instead.
  await query(
    `DELETE FROM person_key_scope
      WHERE run_id = $1 AND agreement_id = $2 AND scope = $3 AND dataset_id = $4 AND population <> $5`,
    [...key, population],
  );
  const [row] = await query<{ id: number }>(
    `INSERT INTO person_key_scope (run_id, agreement_id, scope, dataset_id, population, row_filter)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (run_id, agreement_id, scope, dataset_id) DO NOTHING RETURNING id`,
    [...key, population, table.rowFilter ? JSON.stringify(table.rowFilter) : null],
  );
  if (!row) return null;
  // The population's linked records: every linked record of the dataset, or those whose record
  // the row filter admits (read through the population's partial indexes).
  const linked = populationLinkedSql(shape, table.rowFilter, '$2', '$4');
  // Each person hashed once; each of its records filed under the key's first 64 bits.
  const [{ persons }] = await query<{ persons: number }>(
    `WITH linked AS MATERIALIZED (${linked}),
     keyed AS MATERIALIZED (
       SELECT p.person_id, ${personKeyPrefixSql('p.person_id', '$3::text')} AS prefix
         FROM (SELECT DISTINCT person_id FROM linked) p
     ),
     written AS (
       INSERT INTO person_key (scope_id, record_key, person_id, prefix)
       SELECT $1, l.record_key, l.person_id, k.prefix FROM linked l JOIN keyed k ON k.person_id = l.person_id
     )
     SELECT count(*)::int AS persons FROM keyed`,
    [row.id, runId, table.scope, table.datasetId],
  );
  // The planner's statistics count the new rows (as they will once this commits): a filter reads
  // them by prefix. What a table holds is counted from it (retention deletes rows), never kept.
  await query(`ANALYZE person_key`);
  return persons;
}

/** A table as its scope row names it. */
interface TableRow extends TableName {
  rowFilter: RowFilter | null;
}

/**
 * The tables built for some runs, each once, in a stable order: only those of agreements in force
 * (those of the others are dropped with their run, never built again); the caller keeps those a
 * grant in force reads ({@link CurrentTables}).
 */
const TABLES_OF = (runCondition: string) => `
  SELECT DISTINCT s.agreement_id AS "agreementId", s.scope, s.dataset_id AS "datasetId",
         s.population, s.row_filter AS "rowFilter"
    FROM person_key_scope s JOIN agreement a ON a.id = s.agreement_id
   WHERE ${runCondition} AND ${agreementInForceSql('a')}
   ORDER BY s.scope, s.dataset_id, s.agreement_id`;

/**
 * The tables a statement can read under the versions in force, and the version of each agreement
 * that was judged. The one home of which tables are kept: each version is compiled as the data
 * plane compiles it (compileAgreement) and its tables are those its statements name
 * (personKeyTablesOf: a grant with linkage, a purpose of the version, the population of the grant's
 * row filter). A table of an agreement in force that is not among them (its grant removed or without
 * linkage, its purpose dropped, its row filter changed) is one no statement reads.
 */
class CurrentTables {
  private readonly names: Set<string>;

  private constructor(
    /** The versions in force, as judged. */
    private readonly versions: VersionInForce[],
    private readonly tables: TableName[],
  ) {
    this.names = new Set(tables.map(nameKey));
  }

  /**
   * Reads the versions in force and compiles them, with the caller's `query` (in its transaction, if
   * any). A version one of whose grants does not fit its dataset answers nothing (the data plane
   * refuses to compile it): none of its tables is read.
   */
  static async read(query: Rows): Promise<CurrentTables> {
    const versions = await versionsInForce(query);
    const tables = versions.flatMap((v) =>
      v.compiled ? personKeyTablesOf(v.compiled, v.recipientAgencyId).map(nameOf) : [],
    );
    return new CurrentTables(versions, tables);
  }

  /** Whether a statement can read the table under the version in force. */
  has(table: TableName): boolean {
    return this.names.has(nameKey(table));
  }

  /** The tables no statement reads, as a condition on `person_key_scope s` and its `agreement a`. */
  stale(): { sql: string; params: unknown[] } {
    return staleTables(this.versions, this.tables, 's', [
      ['agreement_id', 'uuid', (t) => t.agreementId],
      ['scope', 'text', (t) => t.scope],
      ['dataset_id', 'uuid', (t) => t.datasetId],
      ['population', 'text', (t) => t.population],
    ]);
  }
}

const CURRENT_RUN = `(SELECT current_run_id FROM linkage_state WHERE id = 1)`;

/** A table as its row names it. */
const tableOf = (row: TableRow): PersonKeyTable => ({
  agreementId: row.agreementId,
  scope: row.scope,
  datasetId: row.datasetId,
  rowFilter: row.rowFilter,
});

/** What a pass did: the tables built (with their persons) and the tables of runs not in force dropped. */
export interface PersonKeyPass {
  built: BuiltTable[];
  dropped: number;
}

/**
 * The lookup tables of filters on personKey (migrations person-key-index, person-key-population): for
 * the linkage run in force, one agreement's grant, one scope (recipient agency and purpose) and one
 * dataset, each linked record of the grant's population (the records its row filter admits) with its
 * person and the first 64 bits of the person's pseudonym. A filter on some pseudonyms then finds its
 * records by index and hashes only their persons (person-key.ts, `among`), where without the table it
 * hashes every linked record of the dataset: about a second per million. Filing the population only,
 * a filter on a person reads none of its records the agreement leaves out: how long it takes does
 * not tell whether the person has any (docs/disclosure-control.md, "Timing").
 *
 * Built only for the grants, scopes and datasets analysts filter by (minimum necessary: no
 * pseudonyms are kept that nobody asks for), in the background: the data plane says which table a
 * filter used ({@link want}), and a broker checks each at most every {@link PERSON_KEY_CHECK_MS}. A
 * table no grant in force reads (of an agreement no longer in force, or one whose version in force
 * removed the grant or its linkage, dropped the purpose or changed the row filter: see
 * {@link CurrentTables}) is never read: it is not carried to a new run, and it goes after each run
 * and every {@link PERSON_KEY_SWEEP_MS} ({@link sweep}). A run comes into force with the tables built
 * for the one before it that a grant in force reads, built in the same transaction
 * ({@link prepareRun}); after it, any that could not be is built, and the tables of runs no longer in
 * force go ({@link afterRun}). Ingestion keeps them true as records enter and
 * leave the population (the registry's `keepPersonKeys`), retention deletes the entries of the
 * records it destroys. A table's rows commit with its `person_key_scope` row, in one transaction, so
 * it is used whole or not at all; until it is, filters hash every record as before. Builds of one
 * table by several brokers at once write it once (the second waits on the first's unique row, then
 * finds it built).
 */
@Injectable()
export class PersonKeyIndex implements OnModuleInit, OnApplicationShutdown {
  private readonly builds = new BackgroundBuilds(PERSON_KEY_CHECK_MS);
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
          'personKey lookup tables no grant in force reads not dropped; the next sweep retries',
        ),
      );
    sweep();
    this.sweeper = setInterval(sweep, PERSON_KEY_SWEEP_MS);
    this.sweeper.unref();
  }

  /**
   * A filter on personKey was answered under `table`'s grant, scope and dataset: the table is built
   * for the run in force, in the background, if it is not. Never throws, never waits.
   */
  want(table: PersonKeyTable): void {
    // Tables are few (grants × purposes with linkage); a broker forgets none of them.
    this.builds.ask(
      tableId(table),
      () => this.build(table),
      (error) =>
        this.logger.warn(
          { err: error, ...table },
          'personKey lookup table not built; the next filter retries',
        ),
    );
  }

  /**
   * Builds `table` for the run in force unless it is built for its population: resolves to the
   * persons written, or null when there was nothing to do (built already, or no run in force).
   */
  async build(table: PersonKeyTable): Promise<number | null> {
    const started = Date.now();
    const persons = await this.db.transaction(async (tx) => {
      // Read first, so that a check of a table that is there locks and writes nothing.
      const [state] = await tx.query<{ run: string | null; built: boolean }>(
        `SELECT ls.current_run_id AS run,
                EXISTS (SELECT 1 FROM person_key_scope s
                         WHERE s.run_id = ls.current_run_id AND s.agreement_id = $1 AND s.scope = $2
                           AND s.dataset_id = $3 AND s.population = $4) AS built
           FROM linkage_state ls WHERE ls.id = 1`,
        [table.agreementId, table.scope, table.datasetId, populationOf(table.rowFilter)],
      );
      if (!state?.run || state.built) return null;
      return buildTable((sql, params) => tx.query(sql, params), state.run, table);
    });
    if (persons !== null) {
      this.logger.info({ ...table, persons, ms: Date.now() - started }, 'personKey lookup table built');
    }
    return persons;
  }

  /**
   * In the transaction that puts run `runId` in force (before it does): builds for it every table
   * built for the run in force that a grant in force reads ({@link CurrentTables}), so that they come into force with the run and no filter in between
   * hashes every record. Each table in a savepoint of its own: one that fails (its dataset's records
   * locked by an ingestion, say: not waited for) is left for the clean-up after the run
   * ({@link afterRun}), and never fails the run.
   */
  async prepareRun(client: Pick<PoolClient, 'query'>, runId: string): Promise<BuiltTable[]> {
    const on: Rows = async <T>(sql: string, params?: unknown[]) =>
      (await client.query(sql, params)).rows as T[];
    const built: BuiltTable[] = [];
    const current = await CurrentTables.read(on);
    for (const row of await on<TableRow>(TABLES_OF(`s.run_id = ${CURRENT_RUN}`))) {
      if (!current.has(row)) continue;
      const table = tableOf(row);
      const started = Date.now();
      await client.query('SAVEPOINT person_key');
      try {
        const persons = await buildTable(on, runId, table, true);
        await client.query('RELEASE SAVEPOINT person_key');
        if (persons !== null) {
          built.push({ ...table, persons });
          this.logger.info(
            { runId, ...table, persons, ms: Date.now() - started },
            'personKey lookup table built',
          );
        }
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT person_key');
        this.logger.warn(
          { err: error, runId, ...table },
          'personKey lookup table not built with its run; the clean-up retries',
        );
      }
    }
    return built;
  }

  /**
   * After a run ends (in force or failed): the tables built for runs not in force that a grant in
   * force reads are built for the one in force where they are not yet, and then they go, with every
   * table no grant in force reads ({@link dropStale}). Idempotent; the
   * linkage engine calls it after each run's clean-up, which its watchdog repeats for a run whose
   * worker died. A table whose row filter no longer fits its dataset is not built again.
   */
  afterRun(): Promise<PersonKeyPass> {
    return this.builds.serially(async () => {
      const built: BuiltTable[] = [];
      const current = await CurrentTables.read((sql, params) => this.db.query(sql, params));
      for (const row of await this.db.query<TableRow>(
        TABLES_OF(`s.run_id IS DISTINCT FROM ${CURRENT_RUN}`),
      )) {
        if (!current.has(row)) continue;
        const table = tableOf(row);
        let persons: number | null;
        try {
          persons = await this.build(table);
        } catch (error) {
          if (!(error instanceof PolicyError)) throw error;
          continue;
        }
        if (persons !== null) built.push({ ...table, persons });
      }
      return { built, dropped: await this.dropStale() };
    });
  }

  /**
   * Drops the tables of runs not in force (waiting for an ingestion that keeps one: the run's
   * clean-up is repeated until none is left), then those no grant in force reads ({@link sweep});
   * resolves to how many went.
   */
  async dropStale(): Promise<number> {
    const gone = await this.db.query<{ id: number }>(
      `DELETE FROM person_key_scope WHERE run_id IS DISTINCT FROM ${CURRENT_RUN} RETURNING id`,
    );
    return gone.length + (await this.sweep());
  }

  /**
   * Drops the tables no statement can read (minimum necessary: no pseudonyms are kept that nobody
   * can ask for): those of agreements no longer in force (revoked, or their version ended), and
   * those the version in force does not read ({@link CurrentTables}: its grant on the dataset removed
   * or without linkage, the purpose dropped, or the row filter changed). Resolves to how many went.
   * A table an ingestion is keeping up to date (its scope row locked) is left to the next sweep: the
   * sweep never waits.
   */
  async sweep(): Promise<number> {
    const stale = (await CurrentTables.read((sql, params) => this.db.query(sql, params))).stale();
    const gone = await this.db.query<{ id: number }>(
      `DELETE FROM person_key_scope WHERE id IN (
         SELECT s.id FROM person_key_scope s JOIN agreement a ON a.id = s.agreement_id
          WHERE ${stale.sql}
            FOR UPDATE OF s SKIP LOCKED)
       RETURNING id`,
      stale.params,
    );
    return gone.length;
  }

  /**
   * Starts no more builds. One under way is not waited for (a table of millions takes a while): its
   * transaction is rolled back when its connection closes, and the next filter, or the watchdog's
   * clean-up of the run, builds it again.
   */
  onApplicationShutdown(): void {
    this.builds.close();
    if (this.sweeper) clearInterval(this.sweeper);
  }
}
