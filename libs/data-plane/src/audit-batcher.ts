import { type AuditEventInput, type AuditService, ReleaseWithdrawnError } from '@broker/audit';

/** A data-plane audit event, with the records it released when it released rows. */
export type DataPlaneEvent = AuditEventInput;

/** At most this many events in one transaction, so that the chain's head is never held for long. */
const MAX_EVENTS = 64;

interface Pending {
  events: DataPlaneEvent[];
  /**
   * Whether its events name a list staged in the database (an export's): such a request is a group of
   * its own, so that a list gone missing (which fails its append) fails no other request.
   */
  alone: boolean;
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

  constructor(private readonly audit: AuditService) {}

  /** Resolves once `events` are committed to the chain, in this order; rejects if they are not. */
  append(events: DataPlaneEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const alone = events.some((e) => e.release !== undefined && 'staged' in e.release);
      this.queue.push({ events, alone, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush() {
    this.flushing = true;
    try {
      let first = true;
      while (this.queue.length) {
        // After a commit, the rest of that turn's I/O first: requests whose rows are already in from
        // PostgreSQL join the next group instead of waiting for the one after.
        if (!first) await new Promise<void>((resolve) => setImmediate(resolve));
        first = false;
        const group: Pending[] = [];
        let size = 0;
        while (
          this.queue.length &&
          (group.length === 0 ||
            (size + this.queue[0].events.length <= MAX_EVENTS && !group[0].alone && !this.queue[0].alone))
        ) {
          const next = this.queue.shift()!;
          group.push(next);
          size += next.events.length;
        }
        try {
          await this.commit(group.flatMap((p) => p.events));
          group.forEach((p) => p.resolve());
        } catch (error) {
          // A release whose condition no longer held (see ReleaseCondition) wrote nothing, and nor did
          // the rest of its group: its request is refused that way, and the others go first in the
          // next group (each time one request fewer, so this ends).
          if (error instanceof ReleaseWithdrawnError) {
            const rest = withdraw(group, error.positions);
            // Positions that name no request's events would retry the same group for ever.
            if (rest.length === group.length) group.forEach((p) => p.reject(error));
            else this.queue.unshift(...rest);
            continue;
          }
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
    // One transaction for the group, with the records its releases returned: both or neither.
    await this.audit.appendGroup(events);
    this.audit.recordGroupCommit(events.length, Number(process.hrtime.bigint() - started) / 1e9);
  }
}

/**
 * Rejects the requests of `group` that own one of the events at `positions` (indices into the
 * group's events, in order) with a {@link ReleaseWithdrawnError} of their own, and returns the others.
 */
function withdraw(group: Pending[], positions: readonly number[]): Pending[] {
  const withdrawn = new Set(positions);
  const rest: Pending[] = [];
  let first = 0;
  for (const pending of group) {
    const own = pending.events.flatMap((_, k) => (withdrawn.has(first + k) ? [k] : []));
    first += pending.events.length;
    if (own.length) pending.reject(new ReleaseWithdrawnError(own));
    else rest.push(pending);
  }
  return rest;
}
