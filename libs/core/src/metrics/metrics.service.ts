import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CONTRACT_REASONS } from '../errors/render-error';

/** What the data plane decided about a request. */
export type DecisionOutcome = 'ALLOW' | 'DENY';

/**
 * The reasons a decision is counted under: the contract's, NONE (allowed), and the codes of refusals
 * without a reason (FORBIDDEN, BAD_USER_INPUT, UNAUTHENTICATED); any other is OTHER.
 */
const DECISION_REASONS: ReadonlySet<string> = new Set([
  'NONE',
  ...CONTRACT_REASONS,
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'UNAUTHENTICATED',
]);

/** The process's Prometheus registry and the broker's own metrics. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'broker_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly ingestedRecords = new Counter({
    name: 'broker_ingested_records_total',
    help: 'Records written by ingestion, by outcome (inserted, updated)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly rejectedBatches = new Counter({
    name: 'broker_ingest_rejected_batches_total',
    help: 'Ingestion batches refused because a row was invalid or the payload too large',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** Data-plane decisions; see {@link recordDecision}. */
  readonly decisions = new Counter({
    name: 'broker_data_plane_decisions_total',
    help: 'Data-plane requests by outcome (ALLOW, DENY) and reason (a contract reason such as FIELD_NOT_RELEASED, or NONE when allowed)',
    labelNames: ['outcome', 'reason'] as const,
    registers: [this.registry],
  });

  readonly unauthenticated = new Counter({
    name: 'broker_unauthenticated_requests_total',
    help: 'Requests to the APIs without a valid API key (answered 401; counted here, not in the audit log)',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  readonly auditAppends = new Counter({
    name: 'broker_audit_appends_total',
    help: 'Audit events appended to the hash chain, by decision (an append whose transaction rolls back is counted too)',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });

  readonly dataPlanePhaseDuration = new Histogram({
    name: 'broker_data_plane_phase_seconds',
    help:
      'Each step of an allowed data-plane request: decide (the decision and its SQL text, in process), read ' +
      '(its statements), append (its release written to the audit log, until committed), render (its ' +
      'answer written, while the append runs)',
    labelNames: ['phase'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });

  readonly auditGroupCommitEvents = new Histogram({
    name: 'broker_audit_group_commit_events',
    help: "Events per group commit of the data plane's audit writes (one transaction for many requests)",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly auditGroupCommitDuration = new Histogram({
    name: 'broker_audit_group_commit_duration_seconds',
    help: "How long a group commit of the data plane's audit writes took: the lag it adds before data leaves",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Counts one data-plane decision, e.g. `recordDecision('DENY', 'FIELD_NOT_RELEASED')`. Reasons are
   * the contract's (`ROLE`, `PURPOSE_NOT_GRANTED`, `NO_AGREEMENT_IN_FORCE`, `FIELD_NOT_RELEASED`,
   * `ROWS_NOT_GRANTED`, `AGREEMENT_AMBIGUOUS`, `LIMIT`, `INVALID`), or `NONE` for an allowed request;
   * anything else is counted as `OTHER`, so a label never carries request text.
   */
  recordDecision(outcome: DecisionOutcome, reason: string | null | undefined): void {
    const label = reason && DECISION_REASONS.has(reason) ? reason : reason ? 'OTHER' : 'NONE';
    this.decisions.inc({ outcome, reason: label });
  }
}
