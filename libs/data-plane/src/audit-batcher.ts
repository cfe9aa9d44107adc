import type { AuditEventInput, AuditService } from '@broker/audit';
import type { Database } from '@broker/core';

/** Which records a release returned: their row ids as PostgreSQL's array text ('{1,2,3}'). */
export interface ReleaseInput {
  datasetId: string;
  rids: string;
}

/** A data-plane audit event, with the records it released when it released rows. */
export type DataPlaneEvent = AuditEventInput & { release?: ReleaseInput };

/** At most this many events in one transaction, so that the chain's head is never held for long. */
const MAX_EVENTS = 64;

interface Pending {
  events: DataPlaneEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit of the data plane's audit events. Appending an event takes the chain head's row lock
 * until COMMIT, so appends are serial and each waits for its own commit to reach the disk; here the
 * events of requests that arrive while a commit is under way are appended together in the next
 * transaction, and one commit serves them all. Every caller still waits for the commit of its own
 * events, and learns of its failure, exactly as with a transaction of its own.
 */
export class AuditBatcher {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
  ) {}

  /** Resolves once `events` are committed to the chain, in this order; rejects if they are not. */
  append(events: DataPlaneEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush() {
    this.flushing = true;
    try {
      while (this.queue.length) {
        const group: Pending[] = [];
        let size = 0;
        while (
          this.queue.length &&
          (group.length === 0 || size + this.queue[0].events.length <= MAX_EVENTS)
        ) {
          const next = this.queue.shift()!;
          group.push(next);
          size += next.events.length;
        }
        try {
          await this.commit(group.flatMap((p) => p.events));
          group.forEach((p) => p.resolve());
        } catch (error) {
          // AuditService refuses a malformed event with a TypeError before any statement: the group
          // is then retried one request at a time, so that it fails only its own request. Any other
          // failure fails the whole group, whose requests then release nothing.
          if (!(error instanceof TypeError) || group.length === 1) {
            group.forEach((p) => p.reject(error));
            continue;
          }
          for (const pending of group) {
            await this.commit(pending.events).then(pending.resolve, pending.reject);
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async commit(events: DataPlaneEvent[]): Promise<void> {
    const started = process.hrtime.bigint();
    await this.db.transaction(async (tx) => {
      // Two statements for the whole group, then one for the records its releases returned.
      const appended = await this.audit.appendAllOnClient(
        tx.client,
        events.map(({ release: _, ...event }) => event),
      );
      const seqs: number[] = [];
      const datasets: string[] = [];
      const rids: string[] = [];
      events.forEach(({ release }, i) => {
        if (!release) return;
        seqs.push(appended[i].seq);
        datasets.push(release.datasetId);
        rids.push(release.rids);
      });
      // In the same transaction as the events: both or neither.
      if (seqs.length) {
        await tx.query(
          `INSERT INTO release_record (audit_seq, dataset_id, rids)
             SELECT s, d, r::bigint[] FROM unnest($1::bigint[], $2::uuid[], $3::text[]) AS u (s, d, r)`,
          [seqs, datasets, rids],
        );
      }
    });
    this.audit.recordGroupCommit(events.length, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
