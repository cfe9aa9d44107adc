import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { RequestContext } from '@broker/auth';
import { LOGGER, isUuid } from '@broker/core';
import type { RecordsIngestedHook } from '@broker/jobs';
import { COMPARISONS } from './core/comparisons';
import { type LinkageModel, levelWeights, matchProbability } from './core/model';
import { type ComparisonWeightsModel, LinkageRunModel, LinkageStatus } from './linkage-run.model';
import { progress } from './linkage-run.machine';
import { LinkageQueue } from './linkage.queue';
import { type LinkageRunRow, LinkageStore } from './linkage.store';

/** How long a request waits for Redis to take a job before leaving the run to the workers' watchdog. */
const ENQUEUE_TIMEOUT_MS = 2000;

/**
 * Linkage as the control plane sees it: starting runs, reading them, and scheduling a run when
 * records are ingested. The runs themselves execute in the worker (see {@link LinkageEngine}).
 */
@Injectable()
export class LinkageService implements RecordsIngestedHook {
  constructor(
    private readonly store: LinkageStore,
    private readonly queue: LinkageQueue,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Starts a run over every dataset with identity fields, or returns the run already waiting to
   * start (which will read the same records). The run is in PostgreSQL before any job exists, so
   * a Redis outage delays it but does not lose it.
   */
  async start(ctx: RequestContext): Promise<LinkageRunModel> {
    const run = await this.store.createRun('MANUAL', ctx.principal.userId);
    this.logger.info({ runId: run.id, requestId: ctx.requestId }, 'linkage run requested');
    await this.kick(run.id);
    return toModel(run);
  }

  /** A run by id; null for an id that is not a run's. */
  async get(_ctx: RequestContext, id: string): Promise<LinkageRunModel | null> {
    if (!isUuid(id)) return null;
    const run = await this.store.getRun(id.toLowerCase());
    return run ? toModel(run) : null;
  }

  /** Every run, newest first. */
  async list(_ctx: RequestContext): Promise<LinkageRunModel[]> {
    return (await this.store.listRuns()).map(toModel);
  }

  /** Ingestion committed a batch: schedule a (debounced) run. Never throws, never waits. */
  recordsIngested(datasetId: string): void {
    withTimeout(this.queue.ingested(), ENQUEUE_TIMEOUT_MS).catch((error: unknown) => {
      this.logger.warn(
        { datasetId, error: (error as Error).message },
        'could not schedule linkage after ingestion; start a run when Redis is back',
      );
    });
  }

  /**
   * Asks a worker to move a run on. Never throws, and waits {@link ENQUEUE_TIMEOUT_MS} at most: the
   * run is in PostgreSQL, and the workers' watchdog moves it on when Redis could not take the job.
   */
  async kick(runId: string): Promise<void> {
    try {
      await withTimeout(this.queue.advance(runId), ENQUEUE_TIMEOUT_MS);
    } catch (error) {
      this.logger.warn(
        { runId, error: (error as Error).message },
        'could not enqueue the linkage run; the workers will find it in PostgreSQL',
      );
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A run row as the contract's LinkageRun. */
export function toModel(row: LinkageRunRow): LinkageRunModel {
  return {
    id: row.id,
    status: row.status as LinkageStatus,
    progress: progress(row.status, row.units_done, row.units_total),
    restarts: row.restarts,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    error: row.error,
    stats: row.stats
      ? {
          records: row.stats.records,
          candidatePairs: row.stats.candidatePairs,
          links: row.stats.links,
          persons: row.stats.persons,
          unparsed: Object.entries((row.stats.unparsed as Record<string, number> | undefined) ?? {}).map(
            ([role, values]) => ({ role, values }),
          ),
          pairsByRule: (row.stats.pairsByRule as { rule: string; pairs: number }[] | undefined) ?? [],
        }
      : null,
    trigger: row.trigger,
    createdAt: row.created_at,
    threshold: row.threshold,
    thresholdProbability: row.threshold === null ? null : matchProbability(row.threshold),
    comparisons: row.model ? comparisonWeights(row.model) : [],
    weightHistogram: row.weight_histogram ?? [],
  };
}

/** A model's levels per comparison, with m, u and the weight log2(m/u) of each. */
export function comparisonWeights(model: Pick<LinkageModel, 'm' | 'u'>): ComparisonWeightsModel[] {
  const weights = levelWeights(model);
  return COMPARISONS.map((comparison, c) => ({
    comparison: comparison.name,
    levels: comparison.levels.map((level, l) => ({
      level,
      m: model.m[c]?.[l] ?? 0,
      u: model.u[c]?.[l] ?? 0,
      weight: weights[c]?.[l] ?? 0,
    })),
  }));
}
