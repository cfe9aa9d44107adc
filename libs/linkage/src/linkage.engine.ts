import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { AuditAction, AuditService } from '@broker/audit';
import { LOGGER } from '@broker/core';
import type { LinkagePhase, LinkageUnitJob } from '@broker/jobs';
import { LINKAGE_CONFIG, type LinkageConfig } from './linkage-config';
import {
  type AdvanceStep,
  advanceStep,
  isDatabaseUnavailable,
  unitStep,
  unitsOf,
} from './linkage-run.machine';
import {
  type ClusterStats,
  type NormaliseStats,
  type ScoreStats,
  headline,
  summariseRun,
} from './linkage-run.stats';
import { LinkageQueue } from './linkage.queue';
import { type LinkageRunRow, LinkageStore, StaleUnitError } from './linkage.store';
import { PersonKeyIndex } from './person-key-index';
import { ClusterPhase } from './phases/cluster.phase';
import { EstimatePhase } from './phases/estimate.phase';
import { NormalisePhase } from './phases/normalise.phase';
import { PreparePhase } from './phases/prepare.phase';
import { ScorePhase } from './phases/score.phase';
import type { UnitPhase } from './phases/unit-phase';

export { REVIEW_PAIRS } from './phases/cluster.phase';

/** Times in a row a unit is done again because retention destroyed records of its run meanwhile. */
const STALE_RETRIES = 10;

/**
 * Executes linkage runs in the worker. The run's state machine (`linkage-run.machine.ts`) says
 * what moving a run on means; the phases (`phases/`) do the units' work; every statement is in
 * {@link LinkageStore}. The run's state is in PostgreSQL; BullMQ only says what to look at next,
 * and {@link advance} re-derives what is pending from the database, so lost jobs are re-created by
 * the watchdog and a unit killed half-way is simply done again by the next worker.
 */
@Injectable()
export class LinkageEngine {
  private readonly phases: Record<LinkagePhase, UnitPhase>;

  constructor(
    private readonly store: LinkageStore,
    private readonly queue: LinkageQueue,
    private readonly audit: AuditService,
    private readonly personKeys: PersonKeyIndex,
    @Inject(LINKAGE_CONFIG) config: LinkageConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    const ctx = { store, config, logger };
    this.phases = {
      prepare: new PreparePhase(ctx),
      normalise: new NormalisePhase(ctx),
      estimate: new EstimatePhase(ctx),
      score: new ScorePhase(ctx),
      cluster: new ClusterPhase(ctx),
    };
  }

  /** Records were ingested (debounced): start a run, or join the one waiting. */
  async ingested(): Promise<void> {
    const run = await this.store.createRun('INGESTION', null);
    this.logger.info({ runId: run.id }, 'linkage run requested by ingestion');
    await this.advance(run.id);
  }

  /**
   * Every unfinished run moved on, and whatever finished runs left behind cleaned up (the
   * watchdog; also safe at any time).
   */
  async driveActiveRuns(): Promise<void> {
    for (const runId of await this.store.activeRunIds()) await this.advance(runId, { watchdog: true });
    for (const runId of await this.store.finishedRunsWithLeftovers()) await this.cleanUp(runId);
  }

  /**
   * Moves a run on, under its row lock, by the state machine's steps: starts it when it is queued
   * and no other runs; when its phase's units are all done, enters the next phase (or finishes the
   * run); and enqueues the pending units. Idempotent. The watchdog also fails the run when a
   * pending unit's job gave up without its run being failed (its worker died, or could not reach
   * PostgreSQL, when it gave up).
   */
  async advance(runId: string, options: { watchdog?: boolean } = {}): Promise<void> {
    const outcome = await this.store.transaction(async (client) => {
      // Before the run's row and chunks are locked: finishing the run builds its personKey lookup
      // tables from its persons, which retention must find (or which must find the records gone).
      await this.store.lockDerived(client);
      let run = await this.store.getRun(runId, client, true);
      for (;;) {
        const step = await this.nextStep(client, run);
        switch (step.kind) {
          case 'none':
          case 'wait':
            return { pending: [], finished: false };
          case 'enqueue': {
            // After the run went back to its estimate phase, its units are new jobs (see linkageUnitJobId).
            const round = run!.restarts ? { round: run!.restarts } : {};
            return {
              pending: step.units.map((unit): LinkageUnitJob => ({
                runId,
                phase: step.phase,
                unit,
                ...round,
              })),
              finished: false,
            };
          }
          case 'start':
            await this.store.markStarted(client, runId);
            await this.store.createUnits(client, runId, 'prepare', 1);
            this.logger.info({ runId }, 'linkage run started');
            break;
          case 'enter':
            await this.store.createUnits(client, runId, step.phase, unitsOf(step.phase, run!));
            await this.store.setPhase(client, runId, step.phase);
            this.logger.info({ runId, phase: step.phase }, 'linkage phase started');
            break;
          case 'succeed':
            await this.succeed(client, run!);
            return { pending: [], finished: true };
        }
        run = await this.store.getRun(runId, client);
      }
    });
    if (outcome.pending.length) {
      const gaveUp = options.watchdog ? await this.queue.gaveUp(outcome.pending) : null;
      if (gaveUp) return this.failUnit(gaveUp.job, gaveUp.reason);
      await this.queue.units(outcome.pending);
    }
    if (outcome.finished) await this.afterRun(runId);
  }

  /** The facts the state machine needs of a run, and its answer. */
  private async nextStep(client: PoolClient, run: LinkageRunRow | null): Promise<AdvanceStep> {
    if (!run) return { kind: 'none' };
    return advanceStep({
      status: run.status,
      phase: run.phase,
      anotherRunning: run.status === 'QUEUED' && (await this.store.anyRunRunning(client)),
      pending:
        run.status === 'RUNNING' && run.phase ? await this.store.pendingUnits(client, run.id, run.phase) : [],
    });
  }

  /**
   * Does one unit, unless it is done already, its run is over or its run is in another phase (it
   * went back to its estimate phase); then moves the run on. Throws on failure, for BullMQ to retry.
   *
   * A retention batch that destroys records of the run after the unit read its inputs makes its
   * commit refuse (see LinkageStore.commitUnit), and may take away inputs the unit reads later (the
   * model, of a run sent back to its estimate phase): either way the unit is looked at again, and
   * done again from what retention left (or not at all, when its run went back before its phase),
   * up to {@link STALE_RETRIES} times in a row; then it throws, for BullMQ to retry later (retention
   * deletes in batches that end).
   */
  async runUnit(job: LinkageUnitJob): Promise<void> {
    const { runId, phase, unit } = job;
    for (let attempt = 1; ; attempt++) {
      // Read before the unit reads anything: a batch that commits after this is seen by the commit.
      const seen = await this.store.destructions(runId);
      const run = await this.store.getRun(runId);
      const state = run?.status === 'RUNNING' ? await this.store.unit(runId, phase, unit) : null;
      const step = unitStep(run, state);
      if (step === 'skip') return;
      if (step === 'missing') throw new Error(`linkage run ${runId} has no unit ${phase} ${unit}`);
      if (step === 'advance') break;
      await this.store.countAttempt(runId, phase, unit);
      const started = Date.now();
      try {
        const committed = await this.phases[phase].execute(run!, unit, seen);
        this.logger.info(
          { runId, phase, unit, ms: Date.now() - started, attempt: state!.attempts + 1, committed },
          'linkage unit done',
        );
        break;
      } catch (error) {
        const stale =
          error instanceof StaleUnitError ||
          (!isDatabaseUnavailable(error) && (await this.store.destructions(runId)) !== seen);
        if (!stale || attempt >= STALE_RETRIES) throw error;
        this.logger.info({ runId, phase, unit }, 'linkage unit done again: retention destroyed records');
      }
    }
    await this.advance(runId);
  }

  /**
   * RUNNING → SUCCEEDED, in the caller's transaction: statistics, histogram, the personKey lookup
   * tables built for it, the run in force, the superseded persons deleted and the persons table
   * analysed (so the planner's statistics commit with the persons the data plane now reads), and the
   * audit event, last.
   */
  private async succeed(client: PoolClient, run: LinkageRunRow): Promise<void> {
    const normalised = await this.store.unitStats<NormaliseStats>(client, run.id, 'normalise');
    const scored = await this.store.unitStats<ScoreStats>(client, run.id, 'score');
    const [clustered] = await this.store.unitStats<ClusterStats>(client, run.id, 'cluster');
    const { stats, histogram } = summariseRun(normalised, scored, clustered);
    await this.store.markSucceeded(client, run.id, stats, histogram);
    // The personKey lookup tables of the run in force, built for this one: in force with it.
    await this.personKeys.prepareRun(client, run.id);
    await this.store.makeCurrent(client, run.id);
    await this.store.deleteSupersededPersons(client);
    await this.store.analyzePersons(client);
    // Last before COMMIT: the audit chain's lock is held only for the commit itself.
    await this.audit.appendOnClient(client, {
      actorUserId: run.requested_by,
      actorAgencyId: null,
      action: AuditAction.LINKAGE_RUN,
      decision: 'ALLOW',
      reason: `SUCCEEDED: ${stats.records} records, ${stats.links} links, ${stats.persons} persons`,
      rowCount: stats.records,
      details: {
        runId: run.id,
        trigger: run.trigger,
        status: 'SUCCEEDED',
        ...headline(stats),
        restarts: run.restarts,
      },
    });
    this.logger.info({ runId: run.id, ...headline(stats) }, 'linkage run succeeded');
  }

  /** A unit's job gave up: its run fails, with the unit and the reason. */
  failUnit(job: LinkageUnitJob, reason: string): Promise<void> {
    return this.failRun(job.runId, `${job.phase} unit ${job.unit}: ${reason}`);
  }

  /** QUEUED or RUNNING → FAILED (its units gave up), audited; then the next waiting run starts. */
  async failRun(runId: string, message: string): Promise<void> {
    const failed = await this.store.transaction(async (client) => {
      const run = await this.store.getRun(runId, client, true);
      if (!run || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return false;
      const error = message.slice(0, 1000);
      await this.store.markFailed(client, runId, error);
      await this.audit.appendOnClient(client, {
        actorUserId: run.requested_by,
        actorAgencyId: null,
        action: AuditAction.LINKAGE_RUN,
        decision: 'ALLOW',
        reason: `FAILED: ${error}`.slice(0, 1000),
        details: { runId, trigger: run.trigger, status: 'FAILED', phase: run.phase, restarts: run.restarts },
      });
      return true;
    });
    if (failed) {
      this.logger.error({ runId, error: message.slice(0, 300) }, 'linkage run failed');
      await this.afterRun(runId);
    }
  }

  /** After a run ends: what it left behind goes, and the next waiting run starts. */
  private async afterRun(runId: string): Promise<void> {
    await this.cleanUp(runId);
    const next = await this.store.nextQueuedRunId();
    if (next) await this.advance(next);
  }

  /**
   * Deletes a finished run's intermediate results and the persons of runs not in force, and builds
   * for the run in force the personKey lookup tables built for the runs before it (dropping theirs).
   * Idempotent: the watchdog repeats it for a run whose worker died before it got here.
   */
  private async cleanUp(runId: string): Promise<void> {
    await this.store.deleteBlobs(runId);
    await this.store.transaction(async (client) => {
      if (await this.store.deleteSupersededPersons(client)) await this.store.analyzePersons(client);
    });
    // The run's outcome stands whatever happens here: filters hash every record until a table is built.
    await this.personKeys.afterRun().then(
      (pass) => {
        if (pass.built.length || pass.dropped)
          this.logger.info({ runId, ...pass }, 'personKey lookup tables renewed');
      },
      (error: unknown) => this.logger.warn({ err: error, runId }, 'personKey lookup tables not renewed'),
    );
  }
}
