import type { PoolClient } from 'pg';

/**
 * Payloads of the {@link QueueName.LINKAGE} queue: ids and numbers only. Identifiers stay in
 * PostgreSQL; a job says which unit of which run to do, and the run's state says the rest.
 */

/** The phases of a linkage run, in order; each is split into units. */
export type LinkagePhase = 'prepare' | 'normalise' | 'estimate' | 'score' | 'cluster';

/** The job names of the linkage queue. */
export enum LinkageJobName {
  /** Moves a run on: starts it, or enqueues its next units, or finishes it. */
  ADVANCE = 'advance',
  /** Does one unit of a run (idempotent: a unit already done is skipped). */
  UNIT = 'unit',
  /** Records were ingested: start (or join) a run. Debounced: a burst of ingestions makes one job. */
  INGESTED = 'ingested',
}

/** Payload of {@link LinkageJobName.ADVANCE}. */
export interface LinkageAdvanceJob {
  runId: string;
}

/** Payload of {@link LinkageJobName.UNIT}. */
export interface LinkageUnitJob {
  runId: string;
  phase: LinkagePhase;
  unit: number;
  /**
   * How many times the run had gone back to its estimate phase when the unit was enqueued (retention
   * destroyed records its model learned from; `linkage_run.restarts`); absent or 0 before it ever did.
   */
  round?: number;
}

/** Payload of {@link LinkageJobName.INGESTED}: nothing, the run reads every dataset. */
export type LinkageIngestedJob = Record<string, never>;

/** Any linkage job's payload. */
export type LinkageJob = LinkageAdvanceJob | LinkageUnitJob | LinkageIngestedJob;

/**
 * The BullMQ job id of a unit: the same for every enqueueing of one unit, so duplicates collapse;
 * `<run>.<phase>.<unit>`, and `.<round>` after it once the run went back to its estimate phase, so
 * that a unit done again is a new job (BullMQ keeps a completed job's id a day, and would take no
 * other job under it).
 */
export function linkageUnitJobId(job: LinkageUnitJob): string {
  const id = `${job.runId}.${job.phase}.${job.unit}`;
  return job.round ? `${id}.${job.round}` : id;
}

/**
 * The hook ingestion calls after it commits a batch, so linkage can schedule a run. Provided by
 * `@broker/linkage`; optional, so the registry works without it.
 */
export const RECORDS_INGESTED_HOOK = Symbol('RECORDS_INGESTED_HOOK');

/** What {@link RECORDS_INGESTED_HOOK} provides. Must not throw, and must not hold ingestion up. */
export interface RecordsIngestedHook {
  recordsIngested(datasetId: string): void;
}

/**
 * The transaction-level advisory lock that orders linkage's writes of what it derives from records
 * with retention's destruction of it. Every linkage transaction that writes derived data (a unit's
 * commit, which writes a run's chunks, normalised records, links, persons or review pairs; the one
 * that finishes a run and builds its personKey lookup tables; a personKey lookup table's build; a
 * reviewer's decision on a pair) takes it shared, first; each retention batch takes it exclusive
 * right after its DELETE of records, before it deletes, lowers or rewrites anything linkage derived
 * from them. A linkage transaction that commits first has its writes cleaned by the batch; one that
 * takes the lock after the batch commits sees the records gone, and a unit's commit sees that the
 * batch destroyed records of its run since the unit read its inputs (`linkage_chunk.destructions`),
 * and is done again.
 */
export const LINKAGE_CHUNKS_LOCK = 7_305_118_224;

/**
 * The hook a retention batch calls in its transaction, under {@link LINKAGE_CHUNKS_LOCK} taken
 * exclusive, after it destroyed records: linkage removes them from the normalised data of the runs
 * under way, sends a run whose model learned from them back to its estimate phase, and, when the run
 * in force had assigned some of them to persons, requests a run (trigger `RETENTION`) in the same
 * transaction, so that the persons it grouped through them go. Provided by `@broker/linkage` (global
 * wherever linkage is loaded).
 */
export const RECORDS_DESTROYED_HOOK = Symbol('RECORDS_DESTROYED_HOOK');

/** What {@link RECORDS_DESTROYED_HOOK} provides. */
export interface RecordsDestroyedHook {
  /**
   * In the batch's transaction (throws to roll the batch back). `assignedInForce` counts the
   * destroyed records the run in force had assigned to persons (the batch deleted those rows): when
   * any, a linkage run is requested in this transaction (a QUEUED run, or the one already waiting,
   * joined), whose id it resolves to; null otherwise.
   */
  recordsDestroyed(
    client: PoolClient,
    datasetId: string,
    keys: readonly string[],
    assignedInForce: number,
  ): Promise<string | null>;
  /**
   * After the batch that requested it committed: asks a worker to move the run on. Never throws, and
   * waits a few seconds at most: a run it could not enqueue is in PostgreSQL, and the workers'
   * watchdog starts it.
   */
  runRequested(runId: string): Promise<void>;
}
