import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Logger } from 'pino';
import { Database, LOGGER, READER_SETTINGS_SQL, type Transaction, isUuid } from '@broker/core';
import { releaseDigestSql } from './audit-chain';

/** A staged list that no append took within this long is deleted (its export never started). */
export const STAGED_RELEASE_TTL_MINUTES = 60;
/** How often each broker deletes such lists. */
const SWEEP_MS = 10 * 60_000;

/** What staging returned: the list's id for the append (`release.staged`), its size and digest. */
export interface StagedRelease {
  staged: string;
  rowCount: number;
  /** {@link releaseDigest} of the list, computed by PostgreSQL from the list it stored. */
  digest: string;
}

/** `pg_export_snapshot()`'s identifier: hex words and a number, nothing to quote. */
const SNAPSHOT_ID = /^[0-9A-F]+-[0-9A-F]+-[0-9]+$/;

/**
 * Release lists written by PostgreSQL, for releases too large to carry through the broker's memory
 * (an export's: a million rows make a 14 MB list). {@link stage} writes the list of row ids that a
 * query selects in a transaction's own snapshot into `release_staged`, from a second connection that
 * imports that snapshot, and returns only the list's id, size and digest; the append of the event that
 * names it moves the list into `release_record` in its own statement and deletes it (see
 * `release.staged` of AuditEventInput). The rows the caller then sends in its snapshot are exactly the
 * rows listed.
 */
@Injectable()
export class ReleaseStaging implements OnModuleInit, OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Stages the list of `_rid`s that `rids` selects (a query with a column `_rid`, and its values) in
   * the snapshot of `snapshotOf`, an open REPEATABLE READ transaction, as the list of `datasetId`.
   * The query runs on a writing connection, in one `INSERT … SELECT`, with the readers' settings (its
   * time limit, and the date style a filter on a date's text reads), so that it selects what the
   * snapshot's own reader would.
   */
  async stage(
    snapshotOf: Transaction,
    datasetId: string,
    rids: { text: string; values: unknown[] },
  ): Promise<StagedRelease> {
    if (!isUuid(datasetId)) throw new TypeError('a staged release needs a dataset uuid');
    const [{ snapshot }] = await snapshotOf.query<{ snapshot: string }>(
      'SELECT pg_export_snapshot() AS snapshot',
    );
    if (!SNAPSHOT_ID.test(snapshot)) throw new Error(`unexpected snapshot identifier ${snapshot}`);
    const datasetParam = `$${rids.values.length + 1}::uuid`;
    const [row] = await this.db.transaction(
      (tx) =>
        tx.query<{ staged: string; n: number; digest: string }>(
          `INSERT INTO release_staged (dataset_id, rids)
           SELECT ${datasetParam}, coalesce(array_agg(s."_rid"), '{}') FROM (${rids.text}) s
           RETURNING id::text AS staged, cardinality(rids) AS n, ${releaseDigestSql('rids')} AS digest`,
          [...rids.values, datasetId],
        ),
      {
        isolation: 'REPEATABLE READ',
        // The snapshot first: SET TRANSACTION SNAPSHOT must precede every other statement.
        with: `SET TRANSACTION SNAPSHOT '${snapshot}'; ${READER_SETTINGS_SQL}`,
      },
    );
    return { staged: row.staged, rowCount: row.n, digest: row.digest };
  }

  /** Deletes a staged list no append will take (its export was not started). Never throws. */
  async discard(staged: string): Promise<void> {
    try {
      await this.db.query(`DELETE FROM release_staged WHERE id = $1`, [staged]);
    } catch (error) {
      this.logger.warn({ err: error, staged }, 'staged release list not deleted: the sweep will');
    }
  }

  /** Deletes the lists no append took within {@link STAGED_RELEASE_TTL_MINUTES}; resolves to how many. */
  async sweep(): Promise<number> {
    const rows = await this.db.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM release_staged
          WHERE staged_at < clock_timestamp() - make_interval(mins => ${STAGED_RELEASE_TTL_MINUTES})
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
    );
    return rows[0].n;
  }

  onModuleInit(): void {
    const sweep = () =>
      void this.sweep().then(
        (n) => n && this.logger.info({ lists: n }, 'staged release lists no append took were deleted'),
        (error: unknown) => this.logger.warn({ err: error }, 'staged release lists not swept'),
      );
    sweep();
    this.timer = setInterval(sweep, SWEEP_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
