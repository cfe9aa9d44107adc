import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Principal } from '@broker/auth';
import { LOGGER, MetricsService } from '@broker/core';
import { AuditAction } from './audit-action.enum';
import { type AuditEventInput, AuditService } from './audit.service';

/** What a refused request asked, as the log may keep it: ids, purpose, names; never filter values. */
export interface RefusalAsked {
  /** The operations or route asked for (`createUser`, `POST /api/datasets/:id/records`). */
  operations: string[];
  /** Ids named in the request (UUIDs only). */
  ids: string[];
  datasetId?: string | null;
  agreementId?: string | null;
  purpose?: string | null;
  fields?: string[] | null;
  action?: AuditAction;
}

/** One refusal: the contract's code and reason, and its message. */
export interface RecordedRefusal {
  code: string;
  reason: string;
  message: string;
}

const WINDOW_MS = 60_000;
const REFUSED = AuditAction.REQUEST_REFUSED;

/** What LIMIT refusals are merged by: one caller, one endpoint, one action, one minute. */
interface MergeKey extends Pick<Principal, 'userId' | 'agencyId'> {
  endpoint: string;
  action: AuditAction;
  /** Minutes since the epoch. */
  minute: number;
}

/**
 * Appends the DENY events of refused requests, before they are answered (DESIGN §4: every refusal
 * of a signed-in caller is an audit event). A flood of requests refused for a limit does not become
 * a flood of hash-chain appends: the first LIMIT refusal of a caller in a minute, per endpoint and
 * action, is appended at once, and the others of that minute are counted and appended as one event
 * with the count (`rowCount`) when the minute is over. Every event says which endpoint refused
 * (`details.endpoint`), so the log and the access chart attribute merged counts to their plane.
 *
 * The count lives in this process: each broker instance merges its own, so with N instances a
 * flooding caller costs at most 2 × N events per endpoint, action and minute, however long the flood
 * (docs/operations.md, "Refusals and the audit log", says why that bound is kept rather than a
 * count shared over Redis).
 */
@Injectable()
export class RefusalRecorder implements OnModuleDestroy {
  /** LIMIT refusals not yet appended, per caller, endpoint, action and minute (see {@link MergeKey}). */
  private readonly pending = new Map<string, { key: MergeKey; count: number }>();
  private readonly timer: NodeJS.Timeout;
  private readonly refusals: Counter<'endpoint' | 'reason'>;

  constructor(
    private readonly audit: AuditService,
    metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.refusals = new Counter({
      name: 'broker_refusals_total',
      help: 'Requests of signed-in callers refused, by endpoint and reason (LIMIT refusals merged in the log are counted one by one here)',
      labelNames: ['endpoint', 'reason'] as const,
      registers: [metrics.registry],
    });
    this.timer = setInterval(() => void this.flush(false), WINDOW_MS / 4);
    this.timer.unref();
  }

  /**
   * Counts refusals in `broker_refusals_total`, one by one: those {@link record} appends, and those
   * the data plane appends itself (its DENY events name the agreement and dataset asked).
   */
  count(endpoint: string, refusals: readonly Pick<RecordedRefusal, 'reason'>[]): void {
    for (const refusal of refusals) this.refusals.inc({ endpoint, reason: refusal.reason });
  }

  /** Appends the DENY events of one refused request: one per distinct reason, LIMIT merged. */
  async record(
    principal: Pick<Principal, 'userId' | 'agencyId'>,
    endpoint: string,
    refusals: RecordedRefusal[],
    asked: RefusalAsked | (() => RefusalAsked),
  ): Promise<void> {
    this.count(endpoint, refusals);
    const byReason = new Map<string, RecordedRefusal[]>();
    for (const refusal of refusals) {
      byReason.set(refusal.reason, [...(byReason.get(refusal.reason) ?? []), refusal]);
    }
    let what: RefusalAsked | undefined;
    for (const reason of byReason.keys()) {
      // Read only when written: a flood of merged refusals costs no parsing.
      if (reason === 'LIMIT') {
        const action = (typeof asked === 'function' ? undefined : asked.action) ?? REFUSED;
        const key = { userId: principal.userId, agencyId: principal.agencyId, endpoint, action };
        if (!this.firstLimitOfMinute(key)) continue;
      }
      what ??= typeof asked === 'function' ? asked() : asked;
      await this.audit.append(this.event(principal, endpoint, reason, what, { count: 1 }));
    }
  }

  /** Whether this is the first such LIMIT refusal of the minute (else it is counted for later). */
  private firstLimitOfMinute(key: Omit<MergeKey, 'minute'>): boolean {
    const merge: MergeKey = { ...key, minute: Math.floor(Date.now() / WINDOW_MS) };
    const id = [merge.userId, merge.agencyId ?? '', merge.endpoint, merge.action, merge.minute].join('|');
    const seen = this.pending.get(id);
    if (seen) seen.count += 1;
    else this.pending.set(id, { key: merge, count: 0 });
    return seen === undefined;
  }

  /** Appends the merged LIMIT refusals of minutes that are over (of every minute when `all`). */
  async flush(all: boolean): Promise<void> {
    const now = Math.floor(Date.now() / WINDOW_MS);
    for (const [id, { key, count }] of [...this.pending]) {
      if (!all && key.minute >= now) continue;
      this.pending.delete(id);
      if (count === 0) continue;
      try {
        await this.audit.append(
          this.event(
            key,
            key.endpoint,
            'LIMIT',
            { operations: [], ids: [], action: key.action },
            { count, minute: new Date(key.minute * WINDOW_MS).toISOString() },
          ),
        );
      } catch (error) {
        this.logger.error({ err: error, count }, 'could not append merged LIMIT refusals');
      }
    }
  }

  async onModuleDestroy() {
    clearInterval(this.timer);
    await this.flush(true);
  }

  private event(
    principal: Pick<Principal, 'userId' | 'agencyId'>,
    endpoint: string,
    reason: string,
    asked: RefusalAsked,
    extra: { count: number; minute?: string },
  ): AuditEventInput {
    return {
      actorUserId: principal.userId,
      actorAgencyId: principal.agencyId,
      action: asked.action ?? REFUSED,
      decision: 'DENY',
      reason,
      purpose: asked.purpose ?? null,
      datasetId: asked.datasetId ?? null,
      agreementId: asked.agreementId ?? null,
      fields: asked.fields ?? null,
      rowCount: extra.count,
      details: {
        endpoint,
        operations: asked.operations.slice(0, 20),
        ids: asked.ids.slice(0, 20),
        // No messages: a coercion error quotes the value it refused, which may be a filter value.
        ...(extra.minute ? { mergedMinute: extra.minute } : {}),
      },
    };
  }
}
