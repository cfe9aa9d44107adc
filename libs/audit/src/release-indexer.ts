import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { Database, LOGGER } from '@broker/core';

/** Releases copied into the index per statement (each its own short transaction). */
export const RELEASE_INDEX_BATCH = 500;

/** How long after a release the index is brought up to date: releases that follow share the pass. */
const DELAY_MS = 50;

/**
 * The copy of every release's record ids that subject access reports search (release_index, with
 * its GIN index), filled in the background, in audit order, so that no release pays for its index
 * entries inside the audit group commit (see the migration release-index-deferred). Releases not yet
 * copied are searched in release_record itself, past the last one copied: the copy is an index,
 * never the record.
 *
 * Every instance copies after its own releases; passes of several instances may overlap, and a
 * release copied twice is copied once (ON CONFLICT DO NOTHING). Each statement copies the releases
 * that follow the last one copied in its snapshot, in order: as the audit chain commits in order,
 * the copy is always every release up to some point, which is what the reports rely on.
 */
@Injectable()
export class ReleaseIndexer implements OnApplicationShutdown {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly db: Database,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Brings the index up to date shortly (once for any number of calls meanwhile). */
  schedule(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pass();
    }, DELAY_MS);
    this.timer.unref();
  }

  /**
   * Copies every release not yet in the index, in audit order; resolves to how many this call
   * copied. Safe beside other passes, in this instance or another.
   */
  async catchUp(): Promise<number> {
    let copied = 0;
    for (;;) {
      const rows = await this.db.query<{ n: number }>(
        `WITH copied AS (
           INSERT INTO release_index (audit_seq, dataset_id, rids)
           SELECT r.audit_seq, r.dataset_id, r.rids FROM release_record r
            WHERE r.audit_seq > (SELECT coalesce(max(i.audit_seq), 0) FROM release_index i)
            ORDER BY r.audit_seq
            LIMIT ${RELEASE_INDEX_BATCH}
           ON CONFLICT (audit_seq) DO NOTHING
           RETURNING 1)
         SELECT count(*)::int AS n FROM copied`,
      );
      copied += rows[0].n;
      // A shorter batch (or one another pass copied first) is the end of what this snapshot saw.
      if (rows[0].n < RELEASE_INDEX_BATCH) return copied;
    }
  }

  /**
   * Merges the index's pending list into the index (`gin_clean_pending_list`), off any request's
   * path: called after a large release is copied, so that autovacuum need not. Resolves to the pages
   * merged.
   */
  async merge(): Promise<number> {
    const [row] = await this.db.query<{ pages: string }>(
      `SELECT gin_clean_pending_list('release_index_rids_idx'::regclass)::text AS pages`,
    );
    return Number(row.pages);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async pass(): Promise<void> {
    const started = Date.now();
    this.running = this.catchUp().then(
      (copied) => {
        if (copied >= RELEASE_INDEX_BATCH) {
          this.logger.info({ copied, ms: Date.now() - started }, 'release index brought up to date');
        }
      },
      // Left for the next pass: until then the reports search release_record past the copy.
      (error: unknown) =>
        this.logger.warn({ err: error }, 'release index pass failed; the next release retries'),
    );
    await this.running;
    this.running = undefined;
    if (this.again) {
      this.again = false;
      this.schedule();
    }
  }
}
