import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { DelayedError, type Job, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { BROKER_CONFIG, type BrokerConfig, LOGGER } from '@broker/core';
import {
  type LinkageAdvanceJob,
  LinkageJobName,
  type LinkageUnitJob,
  QueueName,
  workerConnection,
} from '@broker/jobs';
import { LINKAGE_CONFIG, type LinkageConfig } from './linkage-config';
import { DATABASE_UNAVAILABLE_RETRY_MS, failsRun, isDatabaseUnavailable } from './linkage-run.machine';
import { LinkageEngine } from './linkage.engine';

export type { LinkageAdvanceJob, LinkageIngestedJob, LinkageJob, LinkageUnitJob } from '@broker/jobs';

/**
 * The linkage queue's BullMQ worker, set up as BullMQ's production guide says: a connection that
 * retries forever, a lock and stalled-job check that hand a dead worker's job to another, a
 * graceful close that lets the active job finish, and errors logged rather than thrown. Beside it,
 * a watchdog re-drives unfinished runs from PostgreSQL, so that jobs lost with Redis's data are
 * re-created.
 */
@Injectable()
export class LinkageProcessor implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private worker: Worker | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private driving = false;

  constructor(
    private readonly engine: LinkageEngine,
    @Inject(BROKER_CONFIG) private readonly brokerConfig: BrokerConfig,
    @Inject(LINKAGE_CONFIG) private readonly config: LinkageConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap() {
    const worker = new Worker(QueueName.LINKAGE, (job: Job, token?: string) => this.process(job, token), {
      connection: workerConnection(this.brokerConfig.REDIS_URL),
      prefix: this.brokerConfig.QUEUE_PREFIX,
      concurrency: this.config.LINKAGE_CONCURRENCY,
      lockDuration: this.config.LINKAGE_LOCK_MS,
      stalledInterval: this.config.LINKAGE_STALLED_INTERVAL_MS,
      maxStalledCount: this.config.LINKAGE_MAX_STALLED,
    });
    worker.on('error', (error) => this.logger.error({ error: error.message }, 'linkage worker error'));
    worker.on('stalled', (jobId) => this.logger.warn({ jobId }, 'linkage job stalled: its worker died'));
    worker.on('failed', (job, error) => void this.onFailed(job, error));
    this.worker = worker;
    this.watchdog = setInterval(() => void this.drive(), this.config.LINKAGE_WATCHDOG_MS);
    void this.drive();
  }

  /** Lets the active jobs finish, then closes (before the database connections close). */
  async beforeApplicationShutdown() {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    await this.worker?.close();
    this.worker = null;
  }

  /**
   * Runs a job. A job that fails because PostgreSQL cannot be reached waits and is tried again
   * without spending an attempt (the run's state is in PostgreSQL: nothing can be done without
   * it, and nothing is lost by waiting); any other failure is BullMQ's to retry.
   */
  private async process(job: Job, token: string | undefined): Promise<void> {
    try {
      await this.dispatch(job);
    } catch (error) {
      if (!token || !isDatabaseUnavailable(error)) throw error;
      this.logger.warn(
        { jobId: job.id, name: job.name, error: (error as Error).message },
        'linkage job waits for PostgreSQL',
      );
      await job.moveToDelayed(Date.now() + DATABASE_UNAVAILABLE_RETRY_MS, token);
      throw new DelayedError();
    }
  }

  private async dispatch(job: Job): Promise<void> {
    switch (job.name as LinkageJobName) {
      case LinkageJobName.ADVANCE:
        return this.engine.advance((job.data as LinkageAdvanceJob).runId);
      case LinkageJobName.UNIT:
        return this.engine.runUnit(job.data as LinkageUnitJob);
      case LinkageJobName.INGESTED:
        return this.engine.ingested();
      default:
        throw new Error(`unknown linkage job ${job.name}`);
    }
  }

  /** A unit that gives up (attempts or stalls exhausted) fails its run. */
  private async onFailed(job: Job | undefined, error: Error) {
    if (!job) return;
    this.logger.warn(
      { jobId: job.id, name: job.name, attempts: job.attemptsMade, error: error.message },
      'linkage job failed',
    );
    if (job.name !== (LinkageJobName.UNIT as string)) return;
    try {
      if (!failsRun(await job.getState())) return;
      await this.engine.failUnit(job.data as LinkageUnitJob, error.message);
    } catch (failure) {
      this.logger.error({ jobId: job.id, error: (failure as Error).message }, 'could not fail linkage run');
    }
  }

  private async drive() {
    if (this.driving) return;
    this.driving = true;
    try {
      await this.engine.driveActiveRuns();
    } catch (error) {
      this.logger.warn({ error: (error as Error).message }, 'linkage watchdog could not drive runs');
    } finally {
      this.driving = false;
    }
  }
}
