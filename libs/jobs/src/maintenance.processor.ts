import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject } from '@nestjs/common';
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { LOGGER } from '@broker/core';
import { QueueName } from './queues';

/** Payload of a maintenance job: what to check, never personal data. */
export interface MaintenanceJob {
  task: 'verify-deployment';
}

/** Reports what the worker sees of the deployment; the first job a fresh worker can run end to end. */
@Processor(QueueName.MAINTENANCE)
export class MaintenanceProcessor extends WorkerHost {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    super();
  }

  async process(job: Job<MaintenanceJob>): Promise<{ migrations: number; datasets: number }> {
    const [row] = await this.dataSource.query<{ migrations: number; datasets: number }[]>(
      `SELECT (SELECT count(*) FROM migrations)::int AS migrations, (SELECT count(*) FROM dataset)::int AS datasets`,
    );
    this.logger.info({ jobId: job.id, task: job.data.task, ...row }, 'maintenance job done');
    return row;
  }
}
