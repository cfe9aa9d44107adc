import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable } from '@nestjs/common';
import type { JobsOptions, Queue } from 'bullmq';
import {
  type LinkageAdvanceJob,
  type LinkageIngestedJob,
  LinkageJobName,
  type LinkageUnitJob,
  QueueName,
  linkageUnitJobId,
} from '@broker/jobs';
import { LINKAGE_CONFIG, type LinkageConfig } from './linkage-config';
import { failsRun } from './linkage-run.machine';

/** The one deduplication id of ingestion-triggered runs: a burst of ingestions debounces into one. */
export const INGESTED_DEDUPLICATION_ID = 'linkage-ingested';

/**
 * Adds linkage jobs. Payloads are ids and numbers (see `@broker/jobs`); unit jobs have
 * deterministic ids, so enqueueing a unit twice (from two workers, or from the watchdog) adds it
 * once, and completed jobs are kept a day so that a late duplicate is still recognised.
 */
@Injectable()
export class LinkageQueue {
  constructor(
    @InjectQueue(QueueName.LINKAGE) readonly queue: Queue,
    @Inject(LINKAGE_CONFIG) private readonly config: LinkageConfig,
  ) {}

  /** Asks a worker to move a run on. */
  async advance(runId: string): Promise<void> {
    const data: LinkageAdvanceJob = { runId };
    await this.queue.add(LinkageJobName.ADVANCE, data, {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: { age: 86_400 },
    });
  }

  /** Enqueues units of work. */
  async units(jobs: LinkageUnitJob[]): Promise<void> {
    if (!jobs.length) return;
    const options: JobsOptions = {
      attempts: this.config.LINKAGE_ATTEMPTS,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 7 * 86_400 },
    };
    await this.queue.addBulk(
      jobs.map((data) => ({
        name: LinkageJobName.UNIT,
        data,
        opts: { ...options, jobId: linkageUnitJobId(data) },
      })),
    );
  }

  /**
   * The first of these units whose job gave up (failed for good), with the reason it failed; null
   * when none did. Such a unit is never enqueued again (its job id is taken), so its run must fail.
   */
  async gaveUp(jobs: readonly LinkageUnitJob[]): Promise<{ job: LinkageUnitJob; reason: string } | null> {
    const states = await Promise.all(jobs.map((job) => this.queue.getJobState(linkageUnitJobId(job))));
    const index = states.findIndex((state) => failsRun(state));
    if (index < 0) return null;
    const job = await this.queue.getJob(linkageUnitJobId(jobs[index]));
    return { job: jobs[index], reason: job?.failedReason || 'its job failed' };
  }

  /**
   * Schedules a run after ingestion, `LINKAGE_DEBOUNCE_MS` after the last of a burst of
   * ingestions: BullMQ's debounce (deduplication that replaces the delayed job and extends it).
   */
  async ingested(): Promise<void> {
    const delay = this.config.LINKAGE_DEBOUNCE_MS;
    const data: LinkageIngestedJob = {};
    await this.queue.add(LinkageJobName.INGESTED, data, {
      delay,
      deduplication: { id: INGESTED_DEDUPLICATION_ID, ttl: delay, extend: true, replace: true },
      attempts: 20,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      removeOnFail: { age: 86_400 },
    });
  }
}
