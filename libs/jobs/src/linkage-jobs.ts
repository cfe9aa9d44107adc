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
}

/** Payload of {@link LinkageJobName.INGESTED}: nothing, the run reads every dataset. */
export type LinkageIngestedJob = Record<string, never>;

/** Any linkage job's payload. */
export type LinkageJob = LinkageAdvanceJob | LinkageUnitJob | LinkageIngestedJob;

/** The BullMQ job id of a unit: the same for every enqueueing of one unit, so duplicates collapse. */
export function linkageUnitJobId(job: LinkageUnitJob): string {
  return `${job.runId}.${job.phase}.${job.unit}`;
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
 * The transaction-level advisory lock that orders the cutting of a linkage run's chunks (its
 * prepare unit's commit, which reads the record keys that bound them) with retention's lowering of
 * the bounds that name records it destroys (each batch, after its DELETE): a chunk boundary is then
 * never left naming a destroyed record, whichever commits first.
 */
export const LINKAGE_CHUNKS_LOCK = 7_305_118_224;
