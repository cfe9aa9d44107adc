import type { LinkagePhase } from '@broker/jobs';

/**
 * The state machine of a linkage run, pure: what a run may become, and what moving it on means
 * for a given state. The engine reads the facts from PostgreSQL, asks the functions here what to
 * do, and does it; the phases do the work of the units. Nothing here touches a database or Redis.
 *
 * ```
 *            start (no other run RUNNING)           all units of cluster done
 *  QUEUED ─────────────────────────────► RUNNING ───────────────────────────► SUCCEEDED
 *    │                                   prepare → normalise → estimate
 *    │                                     → score → cluster
 *    │                                      │    estimate (done) / score / cluster
 *    │                                      │      ──► estimate again, when retention destroys
 *    │                                      │          records the model learned from
 *    └───────────── fail ───────────────────┴──► FAILED
 * ```
 *
 * Restarts: a run's state is its row and its units' rows, so a worker, Redis or PostgreSQL that
 * restarts loses nothing committed. Whoever advances the run next (a unit's job, the watchdog)
 * derives the pending units from the database and enqueues them again; a unit found done is not
 * redone.
 */

/** A run's status (the contract's `LinkageStatus`). */
export type LinkageRunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** The phases of a run, in the order they run. */
export const LINKAGE_PHASES: readonly LinkagePhase[] = [
  'prepare',
  'normalise',
  'estimate',
  'score',
  'cluster',
];

/** The transitions a run may make; a finished run never changes again. */
export const RUN_TRANSITIONS: Readonly<Record<LinkageRunStatus, readonly LinkageRunStatus[]>> = {
  QUEUED: ['RUNNING', 'FAILED'],
  RUNNING: ['SUCCEEDED', 'FAILED'],
  SUCCEEDED: [],
  FAILED: [],
};

/**
 * The phase a RUNNING run goes back to when a retention batch destroys records that its estimate
 * unit read (see {@link afterDestruction}): the model is learned again from the records left.
 */
export const RELEARN_PHASE: LinkagePhase = 'estimate';

/** The phases whose units are done again when a run goes back to {@link RELEARN_PHASE}: it and after. */
export const RELEARNED_PHASES: readonly LinkagePhase[] = LINKAGE_PHASES.slice(
  LINKAGE_PHASES.indexOf(RELEARN_PHASE),
);

/**
 * What a retention batch that removed records from a run's normalised data does to the run's
 * phases. A RUNNING run whose estimate unit is done learned its model (u and m per comparison level,
 * the prior, term frequencies) from them, and its score and cluster units weighed and grouped
 * records by that model: it goes back to {@link RELEARN_PHASE} (`relearn`), which drops the model
 * and whatever the units of {@link RELEARNED_PHASES} wrote, and does them again from what is left.
 * Before that (`none`), nothing it computed holds the records once they are removed: an estimate
 * unit still to come reads what is left, and one that read them before the batch commits nothing
 * and is done again (the batch counts itself in `linkage_chunk.destructions`). A finished run has
 * no normalised data, and is never moved.
 */
export function afterDestruction(facts: {
  status: LinkageRunStatus;
  estimateDone: boolean;
}): 'none' | 'relearn' {
  return facts.status === 'RUNNING' && facts.estimateDone ? 'relearn' : 'none';
}

/** Whether a run may go from `from` to `to`. */
export function canTransition(from: LinkageRunStatus, to: LinkageRunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** Whether a run is still to be worked on (the watchdog drives these). */
export function isActive(status: LinkageRunStatus): boolean {
  return status === 'QUEUED' || status === 'RUNNING';
}

/** The phase after `phase`, or null after the last. */
export function nextPhase(phase: LinkagePhase): LinkagePhase | null {
  return LINKAGE_PHASES[LINKAGE_PHASES.indexOf(phase) + 1] ?? null;
}

/** How a run was cut up by its prepare phase (null before it is prepared). */
export interface RunPlan {
  chunks: number | null;
  partitions: number | null;
}

/** How many units a phase has: one per chunk, one per partition, or one. */
export function unitsOf(phase: LinkagePhase, plan: RunPlan): number {
  switch (phase) {
    case 'prepare':
    case 'estimate':
    case 'cluster':
      return 1;
    case 'normalise':
      return plan.chunks ?? 0;
    case 'score':
      return plan.partitions ?? 0;
  }
}

/** Every unit of a prepared run: prepare, each chunk, estimate, each partition, cluster. */
export function unitsTotal(plan: { chunks: number; partitions: number }): number {
  return LINKAGE_PHASES.reduce((n, phase) => n + unitsOf(phase, plan), 0);
}

/** What the engine knows about a run when it moves it on (read under the run's row lock). */
export interface AdvanceFacts {
  status: LinkageRunStatus;
  /** The phase a RUNNING run is in. */
  phase: LinkagePhase | null;
  /** Whether another run is RUNNING (only asked of a QUEUED run). */
  anotherRunning: boolean;
  /** The units of `phase` not done yet (only asked of a RUNNING run). */
  pending: readonly number[];
}

/** One step of moving a run on; the engine applies it and asks again until it gets a final step. */
export type AdvanceStep =
  /** Finished (or no such run): nothing to do. Final. */
  | { kind: 'none' }
  /** Queued behind the run that works: it starts when that one ends. Final. */
  | { kind: 'wait' }
  /** QUEUED → RUNNING, in the prepare phase with its one unit. */
  | { kind: 'start' }
  /** The phase's units are pending: enqueue them (again, if they were enqueued before). Final. */
  | { kind: 'enqueue'; phase: LinkagePhase; units: readonly number[] }
  /** The phase is done: create the next phase's units and enter it. */
  | { kind: 'enter'; phase: LinkagePhase }
  /** The last phase is done: RUNNING → SUCCEEDED, the run in force. Final. */
  | { kind: 'succeed' };

/**
 * What moving a run on does now. Deterministic in its facts, so every worker (and the watchdog)
 * that advances a run at the same state does the same thing; the row lock makes them take turns.
 */
export function advanceStep(facts: AdvanceFacts): AdvanceStep {
  switch (facts.status) {
    case 'SUCCEEDED':
    case 'FAILED':
      return { kind: 'none' };
    case 'QUEUED':
      return facts.anotherRunning ? { kind: 'wait' } : { kind: 'start' };
    case 'RUNNING': {
      if (!facts.phase) throw new Error('a running linkage run has no phase');
      if (facts.pending.length) return { kind: 'enqueue', phase: facts.phase, units: facts.pending };
      const next = nextPhase(facts.phase);
      return next ? { kind: 'enter', phase: next } : { kind: 'succeed' };
    }
  }
}

/** What a worker does with a unit's job. */
export type UnitStep =
  /** The run is over (or gone): the job has nothing to do. */
  | 'skip'
  /** The unit was never planned: a job that does not belong to its run; an error. */
  | 'missing'
  /**
   * Only move the run on: the unit is done (by this job's earlier attempt, or another worker), or
   * it is of a phase the run went back before (see {@link afterDestruction}), and is done when the
   * run enters that phase again.
   */
  | 'advance'
  /** Do the unit, then move the run on. */
  | 'execute';

/**
 * What to do with a unit's job, given its run (status and phase) and the unit's row (its phase, and
 * whether it is done). A unit is done only in its own phase: a job of a unit the run went back
 * before, still queued or retried from before, does nothing.
 */
export function unitStep(
  run: { status: LinkageRunStatus; phase: LinkagePhase | null } | null,
  unit: { phase: LinkagePhase; done: boolean } | null,
): UnitStep {
  if (run?.status !== 'RUNNING') return 'skip';
  if (!unit) return 'missing';
  return unit.done || unit.phase !== run.phase ? 'advance' : 'execute';
}

/**
 * Whether a unit's job fails its run. A job that throws is retried (attempts with back-off); a
 * job whose worker died is handed to another (stalls). Only a job that has given up (BullMQ's
 * state `failed`) fails the run: a run never fails for a failure that will be retried. The worker
 * that sees a job give up fails the run; when it cannot (it died, or PostgreSQL was down), the
 * watchdog finds the job given up among the run's pending units and fails the run then.
 */
export function failsRun(jobState: string): boolean {
  return jobState === 'failed';
}

/**
 * How long a job waits when PostgreSQL cannot be reached before it is tried again. Such a wait
 * spends none of the job's attempts: a restart of the database, however long, fails no run.
 */
export const DATABASE_UNAVAILABLE_RETRY_MS = 2000;

export { isDatabaseUnavailable } from '@broker/core';

/** A run's progress: units done over units planned; 0 before it is prepared, 1 once it succeeded. */
export function progress(status: LinkageRunStatus, unitsDone: number, total: number | null): number {
  if (status === 'SUCCEEDED') return 1;
  return total ? Math.min(1, unitsDone / total) : 0;
}
