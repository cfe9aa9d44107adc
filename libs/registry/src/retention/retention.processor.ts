import { InjectQueue, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { LOGGER } from '@broker/core';
import { QueueName, type RetentionJob } from '@broker/jobs';
import { type RetentionRunReport, RetentionService } from './retention.service';

/** Runs the retention job: one run over every dataset with retention. */
@Processor(QueueName.RETENTION)
export class RetentionProcessor extends WorkerHost {
  constructor(
    private readonly retention: RetentionService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    super();
  }

  async process(job: Job<RetentionJob>): Promise<RetentionRunReport> {
    const report = await this.retention.run();
    this.logger.info(
      {
        jobId: job.id,
        trigger: job.data.trigger,
        destroyed: report.destroyed,
        linkageRuns: report.linkageRuns,
      },
      'retention run done',
    );
    return report;
  }
}

/** How often the worker checks that the retention job is scheduled and not overdue. */
const CHECK_EVERY_MS = 15 * 60_000;

/**
 * Keeps the daily retention job scheduled from what PostgreSQL says (`retention_schedule`), not
 * from what Redis remembers: at start and every quarter hour it re-creates the repeatable job, and if
 * the last run started longer ago than its interval (Redis lost its jobs, or no worker ran), it adds
 * a run at once. Several workers may do this together: the scheduler id and the overdue run's job
 * id are fixed, so BullMQ keeps one of each.
 */
@Injectable()
export class RetentionScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @InjectQueue(QueueName.RETENTION) private readonly queue: Queue<RetentionJob>,
    private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap() {
    void this.ensure();
    this.timer = setInterval(() => void this.ensure(), CHECK_EVERY_MS);
    this.timer.unref();
  }

  onModuleDestroy() {
    if (this.timer) clearInterval(this.timer);
  }

  /** Schedules the job, and runs it now if overdue. */
  async ensure(): Promise<void> {
    try {
      const [schedule] = await this.dataSource.query<
        { every_hours: number; overdue: boolean; slot: string }[]
      >(
        `SELECT every_hours,
                last_started_at IS NULL OR last_started_at < clock_timestamp() - make_interval(hours => every_hours) AS overdue,
                to_char(clock_timestamp(), 'YYYYMMDDHH24') AS slot
           FROM retention_schedule WHERE id = 1`,
      );
      if (!schedule) return;
      await this.queue.upsertJobScheduler(
        'retention-daily',
        { every: schedule.every_hours * 3_600_000 },
        { name: 'retention', data: { trigger: 'schedule' } },
      );
      if (schedule.overdue) {
        await this.queue.add(
          'retention',
          { trigger: 'overdue' },
          { jobId: `retention-overdue-${schedule.slot}` },
        );
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'could not schedule the retention job; will retry');
    }
  }
}
