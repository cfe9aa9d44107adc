import { InjectQueue } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsService } from '@broker/core';
import { QueueName } from '@broker/jobs';

/** Job states whose counts make a queue's depth. */
const STATES = ['waiting', 'prioritized', 'delayed', 'active', 'failed'] as const;
/** A scrape never waits long for Redis or PostgreSQL: a metric then has no sample. */
const COLLECT_TIMEOUT_MS = 2000;

function within<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), COLLECT_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Gauges read at each scrape of `GET /metrics`, from where the state lives (BullMQ in Redis, linkage
 * runs in PostgreSQL), so every broker instance reports the same values: queue depths by state, and
 * the progress of linkage runs.
 */
@Injectable()
export class BrokerMetricsCollector {
  constructor(
    metrics: MetricsService,
    dataSource: DataSource,
    @InjectQueue(QueueName.LINKAGE) linkage: Queue,
    @InjectQueue(QueueName.RETENTION) retention: Queue,
  ) {
    const queues = [linkage, retention];
    new Gauge({
      name: 'broker_queue_jobs',
      help: 'Jobs in each BullMQ queue by state (waiting, prioritized, delayed, active, failed)',
      labelNames: ['queue', 'state'] as const,
      registers: [metrics.registry],
      async collect() {
        this.reset();
        for (const queue of queues) {
          try {
            const counts = await within(queue.getJobCounts(...STATES));
            for (const state of STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
          } catch {
            // Redis is down: no sample rather than a stale one (GET /health says so).
          }
        }
      },
    });
    new Gauge({
      name: 'broker_linkage_run_progress',
      help: 'Progress (0..1) of the latest linkage run, as LinkageRun.progress (0 before any run)',
      registers: [metrics.registry],
      async collect() {
        this.reset();
        try {
          const [latest] = await within(
            dataSource.query<{ status: string; units_done: number; units_total: number | null }[]>(
              `SELECT status, units_done, units_total FROM linkage_run ORDER BY created_at DESC, id DESC LIMIT 1`,
            ),
          );
          if (!latest) return;
          const progress =
            latest.status === 'SUCCEEDED'
              ? 1
              : latest.units_total
                ? Math.min(1, latest.units_done / latest.units_total)
                : 0;
          this.set(progress);
        } catch {
          // PostgreSQL is down: no sample.
        }
      },
    });
    new Gauge({
      name: 'broker_linkage_runs',
      help: 'Linkage runs by status (QUEUED, RUNNING, SUCCEEDED, FAILED)',
      labelNames: ['status'] as const,
      registers: [metrics.registry],
      async collect() {
        this.reset();
        try {
          const rows = await within(
            dataSource.query<{ status: string; runs: string }[]>(
              `SELECT status, count(*)::text AS runs FROM linkage_run GROUP BY status`,
            ),
          );
          for (const status of ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED']) {
            this.set({ status }, Number(rows.find((r) => r.status === status)?.runs ?? 0));
          }
        } catch {
          // PostgreSQL is down: no sample.
        }
      },
    });
  }
}
