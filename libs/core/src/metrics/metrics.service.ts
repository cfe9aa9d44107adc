import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
