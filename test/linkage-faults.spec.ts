import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getQueueToken } from '@nestjs/bullmq';
import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { Pool } from 'pg';
import { QueueName } from '@broker/jobs';
import {
  type BrokerClient,
  type SeededCounty,
  TestBroker,
  seedCounty,
  WorkerProcesses,
} from '@broker/testing';

/**
 * Linkage runs against real faults of real processes: PostgreSQL and Redis of this file's own
 * (an `initdb` cluster and a `redis-server` on free ports, so the shared servers other test files
 * use are never touched), restarted mid-run, and worker processes killed with SIGKILL in each
 * phase. Every run must end with the persons of an undisturbed run, units committed before a
 * fault must not be redone, and what the data plane reads (the persons of the run in force) must
 * never be a half-written run.
 */

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A free TCP port on the loopback interface. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** PostgreSQL refuses to run as root: then its programs run as the `postgres` user. */
const ROOT_USER = process.getuid?.() === 0;
function pgCommand(program: string, args: string[]): [string, string[]] {
  const path = join(PG_BIN, program);
  return ROOT_USER ? ['runuser', ['-u', 'postgres', '--', path, ...args]] : [path, args];
}

/** A PostgreSQL cluster of this test's own, in a temporary directory, on a free port. */
class PrivatePostgres {
  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'broker-faults-pg-'));
    if (ROOT_USER) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
      chownSync(dir, uid, gid);
    }
    const pg = new PrivatePostgres(dir, await freePort());
    pg.run('initdb', ['-D', pg.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    pg.start();
    return pg;
  }

  private get data() {
    return join(this.dir, 'data');
  }

  private run(program: string, args: string[]) {
    const [command, argv] = pgCommand(program, args);
    execFileSync(command, argv, { stdio: 'pipe' });
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  start() {
    // fsync off: only the server process crashes here, never the machine, so what it wrote
    // reaches the disk through the page cache and crash recovery sees it.
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`;
    this.run('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'log'), '-o', options, '-w', 'start']);
  }

  /** Stops the server as a crash does (no checkpoint: recovery replays the WAL at the next start). */
  crash() {
    this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
  }

  destroy() {
    try {
      this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A redis-server of this test's own, without persistence: a restart loses every key, as in production. */
class PrivateRedis {
  private process: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  static async create(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start() {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.process = child;
    const client = new Redis(this.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(50);
      }
    }
    client.disconnect();
  }

  /** Kills the server (SIGKILL): everything it held is gone. */
  async kill() {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

/** Statistics without the CPU time they report, which no two runs share. */
const withoutTimings = (stats: RunRow['stats']) => ({ ...stats, scoreCpuMs: undefined });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface RunRow {
  id: string;
  status: string;
  error: string | null;
  stats: { records: number; candidatePairs: number; links: number; persons: number } | null;
}

interface UnitRow {
  phase: string;
  unit: number;
  attempts: number;
  done: boolean;
}

describe('linkage runs through faults', () => {
  let pg: PrivatePostgres;
  let redis: PrivateRedis;
  let broker: TestBroker;
  let seeded: SeededCounty;
  /** The test's own connections: they survive a PostgreSQL restart (a query then fails, and is retried). */
  let db: Pool;
  /** Moments the data plane could have read a run that was not complete. */
  const halfWritten: string[] = [];
  let watcher: NodeJS.Timeout | null = null;

  /** Worker processes on the private PostgreSQL and Redis. */
  const workers = new WorkerProcesses('linkage-faults', () => ({
    DATABASE_URL: broker.config.DATABASE_URL,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: broker.config.QUEUE_PREFIX,
    LOG_LEVEL: 'warn',
    LINKAGE_CHUNK_RECORDS: '250',
    LINKAGE_PARTITIONS: '3',
    LINKAGE_LOCK_MS: '1500',
    LINKAGE_STALLED_INTERVAL_MS: '300',
    LINKAGE_WATCHDOG_MS: '1000',
    LINKAGE_RANDOM_PAIRS: '100000',
  }));
  const startWorker = (env: Record<string, string> = {}) => workers.start(env);
  const stopWorker = (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') => workers.stop(child, signal);
  const stopWorkers = (signal: NodeJS.Signals = 'SIGKILL') => workers.stopAll(signal);
  const output = workers.output;

  /** A query on the private server that waits out a restart. */
  async function query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        return (await db.query(sql, params)).rows as T[];
      } catch (error) {
        if (attempt >= 100) throw error;
        await sleep(100);
      }
    }
  }

  async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 35_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; worker output:\n${output.join('').slice(-4000)}`);
      }
      await sleep(50);
    }
  }

  async function startLinkage(): Promise<string> {
    const data = await broker.gqlOk<{ startLinkage: { id: string } }>(
      broker.operatorKey,
      `mutation { startLinkage { id } }`,
    );
    return data.startLinkage.id;
  }

  const runRow = async (id: string) =>
    (await query<RunRow>(`SELECT id, status, error, stats FROM linkage_run WHERE id = $1`, [id]))[0];

  const finished = (id: string) =>
    waitFor(`run ${id} to finish`, async () => {
      const run = await runRow(id);
      return run.status === 'SUCCEEDED' || run.status === 'FAILED' ? run : null;
    });

  const units = (runId: string) =>
    query<UnitRow>(
      `SELECT phase, unit, attempts, done_at IS NOT NULL AS done FROM linkage_unit WHERE run_id = $1
        ORDER BY phase, unit`,
      [runId],
    );

  /** A unit of `phase` that a worker is inside (attempted, not done), once `done` units are done. */
  async function unitInProgress(runId: string, phase: string | null, done = 0) {
    const all = await units(runId);
    if (all.filter((u) => u.done).length < done) return null;
    return all.find((u) => u.attempts > 0 && !u.done && (phase === null || u.phase === phase)) ?? null;
  }

  /** Each record's person in a run, as "dataset/key → person". */
  async function assignment(runId: string): Promise<Map<string, string>> {
    const rows = await query<{ dataset_id: string; record_key: string; person_id: string }>(
      `SELECT dataset_id, record_key, person_id FROM linkage_person WHERE run_id = $1`,
      [runId],
    );
    return new Map(rows.map((r) => [`${r.dataset_id}/${r.record_key}`, r.person_id]));
  }

  /**
   * What the data plane reads, checked every 100 ms in one statement (one snapshot): the run in
   * force has succeeded and all its persons are there. Failures to reach the server are not
   * violations (the data plane then answers nothing at all).
   */
  function watchDataPlane() {
    let busy = false;
    watcher = setInterval(() => {
      if (busy) return;
      busy = true;
      db.query<{ run: string | null; status: string | null; records: number | null; persons: number }>(
        `SELECT ls.current_run_id AS run, r.status, (r.stats->>'records')::int AS records,
                (SELECT count(*)::int FROM linkage_person lp WHERE lp.run_id = ls.current_run_id) AS persons
           FROM linkage_state ls LEFT JOIN linkage_run r ON r.id = ls.current_run_id WHERE ls.id = 1`,
      )
        .then(({ rows: [row] }) => {
          if (row.run && (row.status !== 'SUCCEEDED' || row.persons !== row.records)) {
            halfWritten.push(JSON.stringify(row));
          }
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, 100);
  }

  /** After a run: nothing half-written was visible, nothing is left behind, and the persons are the baseline's. */
  async function expectCleanEnd(runId: string) {
    expect(halfWritten).toEqual([]);
    const done = await runRow(runId);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    expect(withoutTimings(done.stats)).toEqual(withoutTimings(baseline.stats));
    expect(await assignment(runId)).toEqual(baselineAssignment);
    await waitFor('the finished runs to leave nothing behind', async () => {
      const [left] = await query<{ blobs: number; persons: number }>(
        `SELECT (SELECT count(*)::int FROM linkage_blob) AS blobs,
                (SELECT count(*)::int FROM linkage_person WHERE run_id <> $1) AS persons`,
        [runId],
      );
      return left.blobs === 0 && left.persons === 0;
    });
  }

  beforeAll(async () => {
    workers.compile();
    pg = await PrivatePostgres.create();
    redis = await PrivateRedis.create();
    broker = await TestBroker.start({
      LABEL: 'linkage_faults',
      DATABASE_URL: pg.url('broker_faults'),
      REDIS_URL: redis.url,
    });
    db = new Pool({ connectionString: broker.config.DATABASE_URL, max: 3 });
    db.on('error', () => undefined);
    const client: BrokerClient = {
      gql: (apiKey, q, variables) => broker.gqlOk(apiKey, q, variables),
      upload: (apiKey, datasetId, contentType, body) => broker.upload(apiKey, datasetId, contentType, body),
    };
    seeded = await seedCounty(client, { operatorKey: broker.operatorKey, seed: 29, people: 300 });
    // Seeding's ingestions scheduled a run; these tests start their own.
    await broker.app.get<Queue>(getQueueToken(QueueName.LINKAGE)).obliterate({ force: true });
    watchDataPlane();
  }, 120_000);

  afterAll(async () => {
    if (watcher) clearInterval(watcher);
    await stopWorkers();
    await broker?.stop();
    await db?.end();
    await redis?.kill();
    pg?.destroy();
    workers.remove();
  });

  let baseline: RunRow;
  let baselineAssignment: Map<string, string>;

  it('links the county undisturbed: the persons every faulty run must end with', async () => {
    const runId = await startLinkage();
    startWorker();
    baseline = await finished(runId);
    expect(baseline.error).toBeNull();
    expect(baseline.status).toBe('SUCCEEDED');
    const records = seeded.county.datasets.reduce((n, d) => n + d.records.length, 0);
    expect(baseline.stats!.records).toBe(records);
    baselineAssignment = await assignment(runId);
    expect(baselineAssignment.size).toBe(records);
    // Every unit was done once.
    expect((await units(runId)).every((u) => u.done && u.attempts === 1)).toBe(true);
    await stopWorkers('SIGTERM');
  }, 60_000);

  it('finishes a run whose worker is killed with SIGKILL in each phase, redoing only the killed units', async () => {
    const runId = await startLinkage();
    const killed: UnitRow[] = [];
    let doneBefore: UnitRow[] = [];
    for (const phase of ['prepare', 'normalise', 'estimate', 'score', 'cluster']) {
      // Every unit of this worker pauses before it commits: the kill lands inside one.
      const doomed = startWorker({ LINKAGE_UNIT_PAUSE_MS: '400' });
      const victim = await waitFor(`a ${phase} unit in progress`, () => unitInProgress(runId, phase));
      await stopWorker(doomed, 'SIGKILL');
      killed.push(victim);
      doneBefore = (await units(runId)).filter((u) => u.done);
      expect((await runRow(runId)).status).toBe('RUNNING');
    }
    startWorker();
    await finished(runId);
    await expectCleanEnd(runId);
    const after = await units(runId);
    const of = (u: UnitRow) => after.find((a) => a.phase === u.phase && a.unit === u.unit)!;
    // The killed units were done again; the units committed before the last kill were not.
    for (const victim of killed)
      expect(of(victim)).toMatchObject({ done: true, attempts: victim.attempts + 1 });
    for (const unit of doneBefore) expect(of(unit).attempts).toBe(unit.attempts);
    await stopWorkers('SIGTERM');
    // About 30 s on two idle cores, most of it five fresh workers loading their modules; more
    // when the cores are shared.
  }, 90_000);

  it('finishes a run across a Redis restart that loses every job, and a run requested while Redis was down', async () => {
    const runId = await startLinkage();
    startWorker({ LINKAGE_UNIT_PAUSE_MS: '300' });
    await waitFor('a unit in progress after three are done', () => unitInProgress(runId, null, 3));
    const doneBefore = (await units(runId)).filter((u) => u.done);
    await redis.kill();
    // Acknowledged while Redis is down: recorded in PostgreSQL, it waits for the run that works.
    const waitingId = await startLinkage();
    expect((await runRow(waitingId)).status).toBe('QUEUED');
    await sleep(500);
    await redis.start();
    await finished(runId);
    await expectCleanEnd(runId);
    const after = await units(runId);
    for (const unit of doneBefore) {
      expect(after.find((a) => a.phase === unit.phase && a.unit === unit.unit)!.attempts).toBe(unit.attempts);
    }
    await finished(waitingId);
    await expectCleanEnd(waitingId);
    await stopWorkers('SIGTERM');
  }, 60_000);

  it('fails a run cleanly when a unit gives up, though no worker recorded it then, and runs again', async () => {
    const [before] = await query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    const runId = await startLinkage();
    const doomed = startWorker({ LINKAGE_UNIT_PAUSE_MS: '700' });
    await waitFor('a normalise unit in progress', () => unitInProgress(runId, 'normalise'));
    await stopWorker(doomed, 'SIGKILL');
    // A worker that gives the unit jobs up for good and dies before it can fail their run: a
    // BullMQ worker of this process, which takes over the stalled job and fails every unit job.
    const queue = broker.app.get<Queue>(getQueueToken(QueueName.LINKAGE));
    const failing = new Worker(
      QueueName.LINKAGE,
      (job: Job) => {
        if (job.name === 'unit') throw new UnrecoverableError('disk full');
        return Promise.resolve();
      },
      {
        connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null },
        prefix: broker.config.QUEUE_PREFIX,
        lockDuration: 1500,
        stalledInterval: 500,
      },
    );
    failing.on('error', () => undefined);
    await waitFor('a unit job given up', async () => (await queue.getFailedCount()) > 0);
    await failing.close();
    expect((await runRow(runId)).status).toBe('RUNNING');

    // The next worker's watchdog finds the unit given up: the run fails, audited, and nothing of
    // it reaches the data plane.
    startWorker();
    const failed = await finished(runId);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatch(/^normalise unit \d+: disk full$/);
    expect(halfWritten).toEqual([]);
    const [after] = await query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    expect(after.run).toBe(before.run);
    expect(await assignment(after.run)).toEqual(baselineAssignment);
    const [event] = await query<{ reason: string }>(
      `SELECT reason FROM audit_event WHERE action = 'LINKAGE_RUN' ORDER BY seq DESC LIMIT 1`,
    );
    expect(event.reason).toBe(`FAILED: ${failed.error}`);

    // Run again: it succeeds with the persons of an undisturbed run.
    const again = await startLinkage();
    await finished(again);
    await expectCleanEnd(again);
    await stopWorkers('SIGTERM');
  }, 60_000);

  it('cleans up after a worker killed between finishing a run and cleaning up after it', async () => {
    // What such a worker leaves: the finished run's intermediate results, and the persons of the
    // run it superseded (here, of the run that failed above).
    const [{ run: current }] = await query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    const [{ id: failedRun }] = await query<{ id: string }>(
      `SELECT id FROM linkage_run WHERE status = 'FAILED' ORDER BY created_at DESC LIMIT 1`,
    );
    await query(`INSERT INTO linkage_blob (run_id, kind, a, b, data) VALUES ($1, 'records', 0, 0, '\\x00')`, [
      current,
    ]);
    await query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, dataset_id, record_key, person_id FROM linkage_person WHERE run_id = $2`,
      [failedRun, current],
    );
    const analyzed = async () =>
      Number(
        (
          await query<{ n: string }>(
            `SELECT analyze_count AS n FROM pg_stat_user_tables WHERE relname = 'linkage_person'`,
          )
        )[0].n,
      );
    const before = await analyzed();
    startWorker();
    await expectCleanEnd(current);
    expect(await analyzed()).toBe(before + 1);
    await stopWorkers('SIGTERM');
  }, 60_000);

  it('finishes a run across a PostgreSQL crash and restart, keeping the units committed before it', async () => {
    const runId = await startLinkage();
    startWorker({ LINKAGE_UNIT_PAUSE_MS: '300' });
    // Into the score phase: the normalised records and the model are intermediate results that
    // must survive the crash (a table of them left unlogged would be emptied by recovery).
    await waitFor('a score unit in progress', () => unitInProgress(runId, 'score'));
    const doneBefore = (await units(runId)).filter((u) => u.done);
    pg.crash();
    // Down longer than a unit's retries with back-off (1 s, then 2 s) last.
    await sleep(4000);
    pg.start();
    await finished(runId);
    await expectCleanEnd(runId);
    // The unit the crash interrupted waited for PostgreSQL without spending its attempts.
    expect(output.join('')).toContain('linkage job waits for PostgreSQL');
    const after = await units(runId);
    for (const unit of doneBefore) {
      expect(after.find((a) => a.phase === unit.phase && a.unit === unit.unit)!.attempts).toBe(unit.attempts);
    }
    await stopWorkers('SIGTERM');
  }, 60_000);
});
