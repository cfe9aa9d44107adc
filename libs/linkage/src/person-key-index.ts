import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Database, LOGGER } from '@broker/core';
import { keyPrefixSql, personHashSql, scopedKeySql } from './person-key';

/** How often, at most, one broker checks that a scope asked for has its table for the run in force. */
export const PERSON_KEY_CHECK_MS = 30_000;

/** What a pass did: the scopes built (with their persons) and the tables of runs not in force dropped. */
export interface PersonKeyPass {
  built: { scope: string; persons: number }[];
  dropped: number;
}

/**
 * The lookup tables of filters on personKey (migration person-key-index): for the linkage run in
 * force and one scope (recipient agency and purpose), each linked record with its person and the
 * first 64 bits of the person's pseudonym. A filter on some pseudonyms then finds its records by
 * index and hashes only their persons (person-key.ts, `among`), where without the table it hashes
 * every linked record of the dataset: about a second per million.
 *
 * Built only for the scopes analysts filter by (minimum necessary: no pseudonyms are kept for a scope
 * nobody asks), in the background: the data plane says which scope a filter used ({@link want}), and
 * a broker checks each at most every {@link PERSON_KEY_CHECK_MS}. When a run comes into force the
 * scopes built for the one before are built for it ({@link afterRun}), and the tables of runs no
 * longer in force go. A scope's rows commit with its `person_key_scope` row, in one transaction, so a
 * table is used whole or not at all; until it is, filters hash every record as before. Builds of one
 * scope by several brokers at once write it once (the second waits on the first's unique row, then
 * finds it built).
 */
@Injectable()
export class PersonKeyIndex implements OnApplicationShutdown {
  private readonly checked = new Map<string, number>();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * A filter on personKey in `scope` was answered: its table is built for the run in force, in the
   * background, if it is not. Never throws, never waits.
   */
  want(scope: string): void {
    if (this.closed) return;
    const now = Date.now();
    const last = this.checked.get(scope);
    if (last !== undefined && now - last < PERSON_KEY_CHECK_MS) return;
    this.checked.set(scope, now);
    // Scopes are few (recipients × purposes); a broker forgets none of them.
    void this.serially(() => this.build(scope)).catch((error: unknown) => {
      this.checked.delete(scope);
      this.logger.warn({ err: error, scope }, 'personKey lookup table not built; the next filter retries');
    });
  }

  /**
   * Builds `scope`'s table for the run in force unless it is built: resolves to the persons written,
   * or null when there was nothing to do (built already, or no run in force).
   */
  async build(scope: string): Promise<number | null> {
    const started = Date.now();
    const persons = await this.db.transaction(async (tx) => {
      const [state] = await tx.query<{ run: string | null; built: boolean }>(
        `SELECT ls.current_run_id AS run,
                EXISTS (SELECT 1 FROM person_key_scope s WHERE s.run_id = ls.current_run_id AND s.scope = $1) AS built
           FROM linkage_state ls WHERE ls.id = 1`,
        [scope],
      );
      if (!state?.run || state.built) return null;
      // Another broker building it meanwhile holds this row's unique key: this waits for its commit
      // and then writes nothing.
      const [row] = await tx.query<{ id: number }>(
        `INSERT INTO person_key_scope (run_id, scope, persons, records) VALUES ($1, $2, 0, 0)
         ON CONFLICT (run_id, scope) DO NOTHING RETURNING id`,
        [state.run, scope],
      );
      if (!row) return null;
      // Each person hashed once; each of its linked records filed under the key's first 64 bits.
      const [{ persons, records }] = await tx.query<{ persons: number; records: number }>(
        `WITH keyed AS MATERIALIZED (
           SELECT p.person_id, ${keyPrefixSql(personHashSql('p.person_id', scopedKeySql('$3::text')))} AS prefix
             FROM (SELECT DISTINCT person_id FROM linkage_person WHERE run_id = $2) p
         ),
         written AS (
           INSERT INTO person_key (scope_id, dataset_id, record_key, person_id, prefix)
           SELECT $1, lp.dataset_id, lp.record_key, lp.person_id, k.prefix
             FROM linkage_person lp JOIN keyed k ON k.person_id = lp.person_id
            WHERE lp.run_id = $2
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM keyed)::int AS persons, (SELECT count(*) FROM written)::int AS records`,
        [row.id, state.run, scope],
      );
      // The planner's statistics count the new rows (as they will once this commits): a filter
      // reads them by prefix.
      await tx.query(`ANALYZE person_key`);
      await tx.query(
        `UPDATE person_key_scope SET persons = $2, records = $3, built_at = clock_timestamp() WHERE id = $1`,
        [row.id, persons, records],
      );
      return persons;
    });
    if (persons !== null) {
      this.logger.info({ scope, persons, ms: Date.now() - started }, 'personKey lookup table built');
    }
    return persons;
  }

  /**
   * After a run ends (in force or failed): the scopes built for runs not in force are built for the
   * one in force, and then their tables go. Idempotent; the linkage engine calls it after each run's
   * clean-up, which its watchdog repeats for a run whose worker died.
   */
  afterRun(): Promise<PersonKeyPass> {
    return this.serially(async () => {
      const stale = await this.db.query<{ scope: string }>(
        `SELECT DISTINCT s.scope FROM person_key_scope s
          WHERE s.run_id IS DISTINCT FROM (SELECT current_run_id FROM linkage_state WHERE id = 1)
          ORDER BY s.scope`,
      );
      const built: PersonKeyPass['built'] = [];
      for (const { scope } of stale) {
        const persons = await this.build(scope);
        if (persons !== null) built.push({ scope, persons });
      }
      return { built, dropped: await this.dropStale() };
    });
  }

  /** Drops the tables of runs not in force; resolves to how many scopes' tables went. */
  async dropStale(): Promise<number> {
    const gone = await this.db.query<{ id: number }>(
      `DELETE FROM person_key_scope
        WHERE run_id IS DISTINCT FROM (SELECT current_run_id FROM linkage_state WHERE id = 1)
       RETURNING id`,
    );
    return gone.length;
  }

  /**
   * Starts no more builds. One under way is not waited for (a table of millions takes a while): its
   * transaction is rolled back when its connection closes, and the next filter, or the watchdog's
   * clean-up of the run, builds it again.
   */
  onApplicationShutdown(): void {
    this.closed = true;
  }

  /** One build at a time per broker: each is a scan of the run's persons. */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain
      .catch(() => undefined)
      .then(() => (this.closed ? Promise.reject(new Error('shutting down')) : work()));
    this.chain = next;
    return next;
  }
}
