import { type LinkagePhase, type LinkageUnitJob, linkageUnitJobId } from '@broker/jobs';
import {
  type AdvanceFacts,
  type AdvanceStep,
  LINKAGE_PHASES,
  type LinkageRunStatus,
  RELEARNED_PHASES,
  RELEARN_PHASE,
  RUN_TRANSITIONS,
  advanceStep,
  afterDestruction,
  canTransition,
  failsRun,
  isActive,
  isDatabaseUnavailable,
  nextPhase,
  progress,
  unitStep,
  unitsOf,
  unitsTotal,
} from './linkage-run.machine';

const STATUSES: LinkageRunStatus[] = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED'];

describe('the linkage run state machine', () => {
  it('allows only queued → running, and either → failed, running → succeeded; a finished run never changes', () => {
    const allowed = STATUSES.flatMap((from) =>
      STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`),
    );
    expect(allowed).toEqual(['QUEUED→RUNNING', 'QUEUED→FAILED', 'RUNNING→SUCCEEDED', 'RUNNING→FAILED']);
    expect(RUN_TRANSITIONS.SUCCEEDED).toEqual([]);
    expect(STATUSES.filter(isActive)).toEqual(['QUEUED', 'RUNNING']);
  });

  it('runs the phases in order, one unit for prepare, estimate and cluster, one per chunk and per partition', () => {
    expect(LINKAGE_PHASES).toEqual(['prepare', 'normalise', 'estimate', 'score', 'cluster']);
    expect(LINKAGE_PHASES.map(nextPhase)).toEqual(['normalise', 'estimate', 'score', 'cluster', null]);
    const plan = { chunks: 7, partitions: 3 };
    expect(LINKAGE_PHASES.map((p) => unitsOf(p, plan))).toEqual([1, 7, 1, 3, 1]);
    expect(unitsTotal(plan)).toBe(13);
    // Before prepare has run, the chunked phases have no units yet.
    expect(unitsOf('normalise', { chunks: null, partitions: null })).toBe(0);
  });

  describe('moving a run on', () => {
    const facts = (over: Partial<AdvanceFacts>): AdvanceFacts => ({
      status: 'RUNNING',
      phase: 'prepare',
      anotherRunning: false,
      pending: [],
      ...over,
    });

    it('starts a queued run only when no other run works', () => {
      expect(advanceStep(facts({ status: 'QUEUED', phase: null }))).toEqual({ kind: 'start' });
      expect(advanceStep(facts({ status: 'QUEUED', phase: null, anotherRunning: true }))).toEqual({
        kind: 'wait',
      });
    });

    it('does nothing to a finished run, whatever else is true', () => {
      for (const status of ['SUCCEEDED', 'FAILED'] as const) {
        expect(advanceStep(facts({ status, pending: [1, 2], anotherRunning: true }))).toEqual({
          kind: 'none',
        });
      }
    });

    it('enqueues the pending units of the phase again, every time it is asked (lost jobs come back)', () => {
      const step = advanceStep(facts({ phase: 'score', pending: [0, 4] }));
      expect(step).toEqual({ kind: 'enqueue', phase: 'score', units: [0, 4] });
      expect(advanceStep(facts({ phase: 'score', pending: [0, 4] }))).toEqual(step);
    });

    it('enters the next phase when the units of one are done, and succeeds after cluster', () => {
      expect(advanceStep(facts({ phase: 'normalise' }))).toEqual({ kind: 'enter', phase: 'estimate' });
      expect(advanceStep(facts({ phase: 'cluster' }))).toEqual({ kind: 'succeed' });
    });

    it('refuses a running run without a phase (the database would be inconsistent)', () => {
      expect(() => advanceStep(facts({ phase: null }))).toThrow('no phase');
    });

    /**
     * A simulated run: the engine's loop over the machine's steps, with units done between
     * advances, killed workers (nothing done, advance again) and a restart that loses every
     * enqueued job. The run goes through every phase once and ends SUCCEEDED.
     */
    it('drives a run from queued to succeeded through every phase, whatever is lost on the way', () => {
      const plan = { chunks: 3, partitions: 2 };
      let status: LinkageRunStatus = 'QUEUED';
      let phase: LinkagePhase | null = null;
      const done = new Map<LinkagePhase, Set<number>>();
      const entered: LinkagePhase[] = [];
      const advance = (): AdvanceStep => {
        for (;;) {
          const pending =
            status === 'RUNNING' && phase
              ? [...Array(unitsOf(phase, plan)).keys()].filter((u) => !done.get(phase!)?.has(u))
              : [];
          const step = advanceStep({ status, phase, anotherRunning: false, pending });
          if (step.kind === 'start') {
            status = 'RUNNING';
            phase = 'prepare';
            entered.push(phase);
          } else if (step.kind === 'enter') {
            phase = step.phase;
            entered.push(phase);
          } else if (step.kind === 'succeed') {
            status = 'SUCCEEDED';
            phase = null;
            return step;
          } else return step;
        }
      };
      let step = advance();
      for (let round = 0; step.kind === 'enqueue'; round++) {
        // Every third round a worker dies before committing, or Redis loses the jobs: nothing is
        // done, and the next advance (the watchdog's) enqueues the same units again.
        if (round % 3 !== 2) {
          const set = done.get(step.phase) ?? new Set<number>();
          set.add(step.units[0]);
          done.set(step.phase, set);
        }
        step = advance();
        expect(round).toBeLessThan(100);
      }
      expect(step).toEqual({ kind: 'succeed' });
      expect(status).toBe('SUCCEEDED');
      expect(entered).toEqual(LINKAGE_PHASES);
      expect([...done.values()].reduce((n, s) => n + s.size, 0)).toBe(unitsTotal(plan));
      expect(advance()).toEqual({ kind: 'none' });
    });
  });

  /**
   * A simulated run whose records retention destroys between its units (one batch after each unit
   * in a list): the engine's steps, the hook's, and the workers' (jobs done in order, each by
   * unitStep, with the jobs enqueued before a batch still queued after it). The run goes back to
   * its estimate phase exactly for the batches that come after its estimate unit is done, does no
   * unit outside its phase, and ends SUCCEEDED with every unit done once more per time it went back.
   */
  it('drives a run that retention sends back to its estimate phase to success, doing no unit outside its phase, each again under a new job id', () => {
    const plan = { chunks: 2, partitions: 3 };
    let status = 'QUEUED' as LinkageRunStatus;
    let phase: LinkagePhase | null = null;
    const done = new Map<LinkagePhase, Set<number>>(LINKAGE_PHASES.map((p) => [p, new Set<number>()]));
    const entered: LinkagePhase[] = [];
    const queue: LinkageUnitJob[] = [];
    const ids = new Set<string>();
    let executed = 0;
    let restarts = 0;
    const advance = () => {
      for (;;) {
        const pending =
          status === 'RUNNING' && phase
            ? [...Array(unitsOf(phase, plan)).keys()].filter((u) => !done.get(phase!)!.has(u))
            : [];
        const step = advanceStep({ status, phase, anotherRunning: false, pending });
        if (step.kind === 'start') {
          status = 'RUNNING';
          phase = 'prepare';
          entered.push(phase);
        } else if (step.kind === 'enter') {
          phase = step.phase;
          entered.push(phase);
        } else if (step.kind === 'succeed') {
          status = 'SUCCEEDED';
          phase = null;
          return;
        } else {
          // BullMQ takes no job under an id it holds (completed jobs are kept a day).
          const units =
            step.kind === 'enqueue' ? step.units.map((unit) => ({ phase: step.phase, unit })) : [];
          for (const { phase: of, unit } of units) {
            const job = { runId: 'r', phase: of, unit, ...(restarts ? { round: restarts } : {}) };
            if (ids.has(linkageUnitJobId(job))) continue;
            ids.add(linkageUnitJobId(job));
            queue.push(job);
          }
          return;
        }
      }
    };
    const destroy = () => {
      if (afterDestruction({ status, estimateDone: done.get('estimate')!.size > 0 }) !== 'relearn') return;
      phase = RELEARN_PHASE;
      entered.push(phase);
      for (const p of RELEARNED_PHASES) done.get(p)!.clear();
      restarts++;
    };
    // A batch after the 1st unit done (prepare: nothing to do), the 4th (the estimate), the 6th
    // (a partition scored), the 10th (the last partition, before cluster is entered) and the 15th
    // (cluster done, the run not yet finished).
    const batchesAfter = new Set([1, 4, 6, 10, 15]);
    advance();
    for (let jobs = 0; queue.length; jobs++) {
      expect(jobs).toBeLessThan(200);
      const job = queue.shift()!;
      const step = unitStep(status === 'RUNNING' ? { status, phase } : null, {
        phase: job.phase,
        done: done.get(job.phase)!.has(job.unit),
      });
      if (step === 'execute') {
        expect(job.phase).toBe(phase);
        done.get(job.phase)!.add(job.unit);
        executed++;
        if (batchesAfter.has(executed)) destroy();
      }
      if (step !== 'skip') advance();
    }
    expect(status).toBe('SUCCEEDED');
    expect(restarts).toBe(4);
    expect(entered).toEqual([
      'prepare',
      'normalise',
      'estimate',
      'estimate', // back, after the estimate
      'score',
      'estimate', // back, after a partition
      'score',
      'estimate', // back, after the last partition
      'score',
      'cluster',
      'estimate', // back, after cluster
      'score',
      'cluster',
    ]);
    // Prepare and each chunk once; the estimate five times; the partitions 1 + 3 + 3 + 3; cluster twice.
    expect(executed).toBe(1 + plan.chunks + 5 + (1 + 3 * plan.partitions) + 2);
    // A finished run is never sent back.
    destroy();
    expect([status, restarts]).toEqual(['SUCCEEDED', 4]);
  });

  it('does a unit only while its run runs, in its own phase, and only once', () => {
    const running = { status: 'RUNNING' as const, phase: 'score' as const };
    expect(unitStep(running, { phase: 'score', done: false })).toBe('execute');
    expect(unitStep(running, { phase: 'score', done: true })).toBe('advance');
    expect(unitStep(running, { phase: 'normalise', done: true })).toBe('advance');
    expect(unitStep(running, null)).toBe('missing');
    // A job of a unit the run went back before (retention destroyed records its model learned
    // from): nothing done; the unit is done when the run enters its phase again.
    const back = { status: 'RUNNING' as const, phase: 'estimate' as const };
    expect(unitStep(back, { phase: 'score', done: false })).toBe('advance');
    expect(unitStep(back, { phase: 'cluster', done: false })).toBe('advance');
    expect(unitStep(back, { phase: 'estimate', done: false })).toBe('execute');
    for (const status of ['QUEUED', 'SUCCEEDED', 'FAILED'] as const) {
      expect(unitStep({ status, phase: 'score' }, { phase: 'score', done: false })).toBe('skip');
    }
    expect(unitStep(null, { phase: 'score', done: false })).toBe('skip');
  });

  it('sends a running run back to its estimate phase when retention destroys records its estimate read, and no other', () => {
    expect(RELEARN_PHASE).toBe('estimate');
    expect(RELEARNED_PHASES).toEqual(['estimate', 'score', 'cluster']);
    expect(afterDestruction({ status: 'RUNNING', estimateDone: true })).toBe('relearn');
    // Before its estimate is done: the estimate to come (or one done again) reads what is left.
    expect(afterDestruction({ status: 'RUNNING', estimateDone: false })).toBe('none');
    // A finished run never changes; a queued one has read nothing.
    for (const status of ['QUEUED', 'SUCCEEDED', 'FAILED'] as const) {
      expect(afterDestruction({ status, estimateDone: true })).toBe('none');
    }
  });

  it('fails a run only for a job that gave up, not for one that will be retried or taken over', () => {
    expect(failsRun('failed')).toBe(true);
    for (const state of ['active', 'waiting', 'delayed', 'completed', 'unknown']) {
      expect(failsRun(state)).toBe(false);
    }
  });

  it('waits out PostgreSQL being unreachable, and retries (then fails on) anything else', () => {
    const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
    for (const unavailable of [
      pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      pgError('ECONNRESET'),
      new Error('Connection terminated unexpectedly'),
      new Error('Client has encountered a connection error and is not queryable'),
      pgError('57P01', 'terminating connection due to administrator command'),
      pgError('57P02', 'terminating connection because of crash of another server process'),
      pgError('57P03', 'the database system is starting up'),
      pgError('53300', 'sorry, too many clients already'),
      pgError('08006', 'connection failure'),
      // TypeORM's and other wrappers.
      Object.assign(new Error('query failed'), { driverError: pgError('57P03') }),
      new Error('could not commit', { cause: new Error('Connection terminated') }),
    ]) {
      expect(isDatabaseUnavailable(unavailable)).toBe(true);
    }
    for (const failure of [
      new Error('linkage run r has no chunk 3'),
      pgError('23505', 'duplicate key value violates unique constraint'),
      pgError('42P01', 'relation "records.x" does not exist'),
      pgError('40001', 'could not serialize access'),
      null,
      'Connection terminated',
    ]) {
      expect(isDatabaseUnavailable(failure)).toBe(false);
    }
  });

  it('reports progress as units done over units planned, 1 once succeeded', () => {
    expect(progress('QUEUED', 0, null)).toBe(0);
    expect(progress('RUNNING', 3, 12)).toBe(0.25);
    expect(progress('RUNNING', 14, 12)).toBe(1);
    expect(progress('SUCCEEDED', 0, null)).toBe(1);
    expect(progress('FAILED', 6, 12)).toBe(0.5);
  });
});
