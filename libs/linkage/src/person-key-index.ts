import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { BackgroundBuilds, Database, LOGGER } from '@broker/core';
import { keyPrefixSql } from '@broker/policy';
import { lockDerived } from './linkage.store';
import { type PersonKeyTable, personHashSql, scopedKeySql } from './person-key';

/** How often, at most, one broker checks that a table asked for is built for the run in force. */
export const PERSON_KEY_CHECK_MS = 30_000;

/** Runs one statement and returns its rows (a transaction's, or a pg client's). */
type Rows = <T>(sql: string, params?: unknown[]) => Promise<T[]>;

/** A built table: which, and how many persons it holds. */
export type BuiltTable = PersonKeyTable & { persons: number };

/**
 * Builds a lookup table for run `runId` in the caller's transaction, unless it is built: resolves to
 * the persons it holds, or null when it was there already. Another transaction building the same one
 * meanwhile holds its row's unique key: this waits for it to end and then writes nothing.
 */
async function buildTable(query: Rows, runId: string, table: PersonKeyTable): Promise<number | null> {
  // Ordered with retention's batches, which delete the entries of the records they destroy.
  await lockDerived(query);
  const [row] = await query<{ id: number }>(
    `INSERT INTO person_key_scope (run_id, scope, dataset_id) VALUES ($1, $2, $3)
     ON CONFLICT (run_id, scope, dataset_id) DO NOTHING RETURNING id`,
    [runId, table.scope, table.datasetId],
  );
  if (!row) return null;
  // Each person hashed once; each of its linked records of the dataset filed under the key's first
  // 64 bits.
  const [{ persons }] = await query<{ persons: number }>(
    `WITH linked AS MATERIALIZED (
       SELECT record_key, person_id FROM linkage_person WHERE run_id = $2 AND dataset_id = $4
     ),
     keyed AS MATERIALIZED (
       SELECT p.person_id, ${keyPrefixSql(personHashSql('p.person_id', scopedKeySql('$3::text')))} AS prefix
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

/** The tables built for some runs, each once, in a stable order. */
const TABLES_OF = (runCondition: string) => `
  SELECT DISTINCT s.scope, s.dataset_id AS "datasetId" FROM person_key_scope s
   WHERE ${runCondition} ORDER BY s.scope, s.dataset_id`;
const CURRENT_RUN = `(SELECT current_run_id FROM linkage_state WHERE id = 1)`;

/** What a pass did: the tables built (with their persons) and the tables of runs not in force dropped. */
export interface PersonKeyPass {
  built: BuiltTable[];
  dropped: number;
}

/**
 * The lookup tables of filters on personKey (migration person-key-index): for the linkage run in
 * force, one scope (recipient agency and purpose) and one dataset, each linked record with its person
 * and the first 64 bits of the person's pseudonym. A filter on some pseudonyms then finds its records by
 * index and hashes only their persons (person-key.ts, `among`), where without the table it hashes
 * every linked record of the dataset: about a second per million.
 *
 * Built only for the scopes and datasets analysts filter by (minimum necessary: no pseudonyms are
 * kept that nobody asks for), in the background: the data plane says which table a filter used
 * ({@link want}), and a broker checks each at most every {@link PERSON_KEY_CHECK_MS}. A run comes
 * into force with the tables built for the one before it, built in the same transaction
 * ({@link prepareRun}); after it, any that could not be is built, and the tables of runs no longer in
 * force go ({@link afterRun}). A table's rows commit with its `person_key_scope` row, in one
 * transaction, so it is used whole or not at all; until it is, filters hash every record as before.
 * Builds of one table by several brokers at once write it once (the second waits on the first's
 * unique row, then finds it built).
 */
@Injectable()
export class PersonKeyIndex implements OnApplicationShutdown {
  private readonly builds = new BackgroundBuilds(PERSON_KEY_CHECK_MS);

  constructor(
    private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * A filter on personKey was answered from `table`'s scope and dataset: the table is built for the
   * run in force, in the background, if it is not. Never throws, never waits.
   */
  want(table: PersonKeyTable): void {
    // Tables are few (recipients × purposes × datasets with linkage); a broker forgets none of them.
    this.builds.ask(
      `${table.scope} ${table.datasetId}`,
      () => this.build(table),
      (error) =>
        this.logger.warn(
          { err: error, ...table },
          'personKey lookup table not built; the next filter retries',
        ),
    );
  }

  /**
   * Builds `table` for the run in force unless it is built: resolves to the persons written, or null
   * when there was nothing to do (built already, or no run in force).
   */
  async build(table: PersonKeyTable): Promise<number | null> {
    const started = Date.now();
    const persons = await this.db.transaction(async (tx) => {
      // Read first, so that a check of a table that is there writes nothing.
      const [state] = await tx.query<{ run: string | null; built: boolean }>(
        `SELECT ls.current_run_id AS run,
                EXISTS (SELECT 1 FROM person_key_scope s
                         WHERE s.run_id = ls.current_run_id AND s.scope = $1 AND s.dataset_id = $2) AS built
           FROM linkage_state ls WHERE ls.id = 1`,
        [table.scope, table.datasetId],
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
   * built for the run in force, so that they come into force with the run and no filter in between
   * hashes every record. Each table in a savepoint of its own: one that fails is left for the
   * clean-up after the run ({@link afterRun}), and never fails the run.
   */
  async prepareRun(client: Pick<PoolClient, 'query'>, runId: string): Promise<BuiltTable[]> {
    const on: Rows = async <T>(sql: string, params?: unknown[]) =>
      (await client.query(sql, params)).rows as T[];
    const built: BuiltTable[] = [];
    for (const table of await on<PersonKeyTable>(TABLES_OF(`s.run_id = ${CURRENT_RUN}`))) {
      const started = Date.now();
      await client.query('SAVEPOINT person_key');
      try {
        const persons = await buildTable(on, runId, table);
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
   * After a run ends (in force or failed): the tables built for runs not in force are built for the
   * one in force where they are not yet, and then they go. Idempotent; the linkage engine calls it
   * after each run's clean-up, which its watchdog repeats for a run whose worker died.
   */
  afterRun(): Promise<PersonKeyPass> {
    return this.builds.serially(async () => {
      const built: BuiltTable[] = [];
      for (const table of await this.db.query<PersonKeyTable>(
        TABLES_OF(`s.run_id IS DISTINCT FROM ${CURRENT_RUN}`),
      )) {
        const persons = await this.build(table);
        if (persons !== null) built.push({ ...table, persons });
      }
      return { built, dropped: await this.dropStale() };
    });
  }

  /** Drops the tables of runs not in force; resolves to how many went. */
  async dropStale(): Promise<number> {
    const gone = await this.db.query<{ id: number }>(
      `DELETE FROM person_key_scope WHERE run_id IS DISTINCT FROM ${CURRENT_RUN} RETURNING id`,
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
  }
}
