/**
 * `npm run bench:query`: the data plane's cost over the bare SQL it runs, in one run, on loopback.
 *
 * Loads BENCH_QUERY_ROWS (default 100,000) generated rows × 10 fields through the REST ingest, has
 * an agreement release them to an analyst with a row filter and two transforms (a HASH and a
 * GENERALIZE), and then measures:
 *
 * (a) latency of a 1,000-row page through `POST /data/graphql`, against the very statement the
 *     broker runs, run through `pg` with `JSON.stringify` of its rows behind a bare Fastify server
 *     (a child process, like the broker). Requests alternate between the two, one at a time.
 *     Target: p50 broker/baseline ≤ 1.15.
 * (b) throughput of 10-row pages from 8 concurrent connections (autocannon, fixed duration) against
 *     both. Target: broker/baseline ≥ 0.6.
 * (c) the in-process decision per request with a warm cache: role and shape checks, the policy
 *     cache hit (at a stamp already read), parse, validate, variables and plan/authorise of every
 *     root field; no SQL, no audit write. Target ≤ 20 µs. The I/O of a request is timed apart.
 * (o) supplementary: one row by its key (the primary key's index), one at a time and from 8
 *     connections, against the same baseline: the broker's fixed cost per request, where the
 *     statement itself costs next to nothing.
 * (r) release recording: the 1,000-row page of (a) through this broker, which records which records
 *     each release returned, against a second broker on the same database with RECORD_RELEASES=false,
 *     alternating. Target: p50 on/off ≤ 1.10.
 * (g) an aggregate over BENCH_AGG_ROWS (default 1,000,000) rows, grouped by two released names,
 *     through `POST /data/graphql` under an AGGREGATE_ONLY grant, against the same GROUP BY in raw SQL
 *     through `pg`, alternating. Target: p50 broker/raw ≤ 1.3.
 * (l) a linked count (issue 13): program completions of one dataset of BENCH_LINK_ROWS (default
 *     1,000,000) rows whose person has a booking in another of as many rows 0..365 days later, grouped
 *     by program, through `POST /data/graphql` under AGGREGATE_ONLY grants with linkage, against the
 *     same join written by hand in SQL on the same tables, alternating. Target: p50 broker/SQL ≤ 1.5.
 *
 * The broker is the built `dist/apps/broker/src/main.js` in a child process on its own database;
 * (c) and the statement of the baseline come from a second broker built in this process on the same
 * database, through the data plane's own `decide` and `pageSql`. See docs/benchmarks.md.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import autocannon from 'autocannon';
import { AgreementService } from '@broker/agreements';
import { AuditAction, AuditService } from '@broker/audit';
import { AuthService } from '@broker/auth';
import { createLogger, loadConfig } from '@broker/core';
import {
  DataPlaneService,
  type NodeJsonWriter,
  type NodeTexts,
  PolicyCache,
  pageSql,
  precheck,
} from '@broker/data-plane';
import { createBroker } from '../apps/broker/src/bootstrap';
import {
  BENCH_JUSTIFICATION,
  BROKER_MAIN,
  activateAgreement,
  cpuSeconds,
  databaseUrl,
  dropDatabase,
  freePort,
  gql,
  median,
  mulberry32,
  post,
  scrapeMetrics,
  stopChild,
  waitForBroker,
  withClient,
  benchParties,
} from './bench-support';
import { MATRIX_ROWS, runMatrix } from './query-matrix';

const ROWS = Number(process.env.BENCH_QUERY_ROWS ?? 100_000);
// (a): requests per side, after a warm-up of a tenth as many.
const SAMPLES = Number(process.env.BENCH_QUERY_SAMPLES ?? 200);
// (b): seconds per side, after a warm-up of 2 s, in ROUNDS alternating rounds (see cannonPair).
const DURATION = Number(process.env.BENCH_QUERY_DURATION ?? 10);
// (b), (o): rounds per side; their ratio is the median of the rounds' ratios.
const ROUNDS = Number(process.env.BENCH_QUERY_ROUNDS ?? 4);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  throw new Error('BENCH_QUERY_ROUNDS must be a whole number of rounds, 1 or more');
}
// (b), (o): concurrent connections (BENCH_QUERY_CONNECTIONS=1 to profile one request at a time).
const CONNECTIONS = Number(process.env.BENCH_QUERY_CONNECTIONS ?? 8);
if (!Number.isInteger(CONNECTIONS) || CONNECTIONS < 1) {
  throw new Error('BENCH_QUERY_CONNECTIONS must be a whole number of connections, 1 or more');
}
// (c): timed iterations per round, three rounds, after a warm-up.
const ITERATIONS = Number(process.env.BENCH_QUERY_ITERATIONS ?? 20_000);
// Which parts to run, e.g. BENCH_QUERY_PARTS=a to profile (a) alone; the others print NaN.
const PARTS = process.env.BENCH_QUERY_PARTS ?? 'abcorglm';
// (g): rows of the aggregate's dataset, and requests per side.
const AGG_ROWS = Number(process.env.BENCH_AGG_ROWS ?? 1_000_000);
const AGG_SAMPLES = Number(process.env.BENCH_AGG_SAMPLES ?? 30);
const AGG_SLUG = 'bench_query_counts';
const TARGET_R = 1.1;
// (l): rows of each dataset of the linked count, requests per side, and the target.
const LINK_ROWS = Number(process.env.BENCH_LINK_ROWS ?? 1_000_000);
const LINK_SAMPLES = Number(process.env.BENCH_LINK_SAMPLES ?? 12);
const TARGET_L = 1.5;
const TARGET_G = 1.3;
// BENCH_QUERY_DB: another name, so that two runs on one server do not share a database.
const BROKER_DB = process.env.BENCH_QUERY_DB || 'broker_bench_query';
const SLUG = 'bench_query_people';
const PURPOSE = 'RECIDIVISM_EVALUATION';
const PAGE_A = 1000;
const PAGE_B = 10;
const TARGET_A = 1.15;
const TARGET_B = 0.6;
const TARGET_O = 0.5;
const TARGET_C = 20;

const ROOT = resolve(__dirname, '..', '..');
const DATA_DIR = resolve(ROOT, 'bench', '.data');

/** The dataset: a STRING key, strings, integers, floats, a boolean, a date and a date-time. */
const FIELDS = [
  { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
  { name: 'full_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', required: true },
  { name: 'city', type: 'STRING', classification: 'QUASI_IDENTIFIER', required: false },
  { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER', required: true },
  { name: 'visits', type: 'INTEGER', classification: 'NON_SENSITIVE', required: false },
  { name: 'score', type: 'FLOAT', classification: 'NON_SENSITIVE', required: false },
  { name: 'balance', type: 'FLOAT', classification: 'SENSITIVE', required: false },
  { name: 'active', type: 'BOOLEAN', classification: 'NON_SENSITIVE', required: false },
  { name: 'birth_date', type: 'DATE', classification: 'QUASI_IDENTIFIER', required: false },
  { name: 'recorded_at', type: 'DATETIME', classification: 'NON_SENSITIVE', required: true },
] as const;
/** Every field released: full_name as its HMAC, birth_date as its year, the rest as stored. */
const TRANSFORMS: Record<string, 'HASH' | 'GENERALIZE'> = { full_name: 'HASH', birth_date: 'GENERALIZE' };
const RELEASED = [
  'id',
  'full_name_hash',
  'city',
  'age',
  'visits',
  'score',
  'balance',
  'active',
  'birth_date_year',
  'recorded_at',
];
const CITIES = [
  'Springfield',
  'Riverside',
  'Fairview',
  'Greenville',
  'Madison',
  'Georgetown',
  'Salem',
  'Clinton',
];
/** Adults in five of the eight cities: about half the rows. */
const ROW_FILTER = { age: { $gte: 18 }, city: { $in: CITIES.slice(0, 5) } };
const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Radia', 'Linus'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', "O'Neil"];
const SYLLABLES = [...'bcdfghjklmnprstvwz'].flatMap((c) => [`${c}a`, `${c}o`, `${c}i`]);

/** (o): one row by its key (the primary key's index), so that the statement costs next to nothing. */
const lookupOf = (id: string) =>
  `{ ${SLUG}(purpose: ${PURPOSE}, where: { id: { eq: ${JSON.stringify(id)} } }) { nodes { ${RELEASED.join(' ')} } pageInfo { hasNextPage endCursor } } }`;
const queryOf = (first: number) =>
  `{ ${SLUG}(purpose: ${PURPOSE}, first: ${first}) { nodes { ${RELEASED.join(' ')} } pageInfo { hasNextPage endCursor } } }`;

interface Statement {
  text: string;
  values: unknown[];
}

// ---------------------------------------------------------------------------------------------
// The broker's own account of its steps (broker_data_plane_phase_seconds, GET /metrics).

/** Cumulative bucket counts of the steps' histogram, per step: `le` → count. */
type Steps = Map<string, Map<number, number>>;

async function brokerSteps(port: number): Promise<Steps> {
  const text = await scrapeMetrics(port);
  const steps: Steps = new Map();
  for (const m of text.matchAll(/^broker_data_plane_phase_seconds_bucket\{([^}]*)\} (\S+)$/gm)) {
    const phase = /phase="([^"]+)"/.exec(m[1])?.[1];
    const le = /le="([^"]+)"/.exec(m[1])?.[1];
    if (!phase || !le) continue;
    const buckets = steps.get(phase) ?? new Map<number, number>();
    buckets.set(le === '+Inf' ? Infinity : Number(le), Number(m[2]));
    steps.set(phase, buckets);
  }
  return steps;
}

/**
 * Each step's median between two scrapes, in ms, interpolated within its bucket as Prometheus's
 * histogram_quantile does: 'decide 0.31, read 7.2, append 2.4, render 1.6'.
 */
function stepsBetween(before: Steps, after: Steps): string {
  const parts: string[] = [];
  for (const phase of ['decide', 'read', 'append', 'render']) {
    const now = after.get(phase);
    if (!now) continue;
    const les = [...now.keys()].sort((x, y) => x - y);
    const counts = les.map((le) => now.get(le)! - (before.get(phase)?.get(le) ?? 0));
    const total = counts[counts.length - 1];
    if (!total) continue;
    const half = total / 2;
    const i = counts.findIndex((c) => c >= half);
    const upper = les[i];
    const lower = i ? les[i - 1] : 0;
    const below = i ? counts[i - 1] : 0;
    const within = counts[i] - below;
    const median = upper === Infinity ? lower : lower + ((upper - lower) * (half - below)) / (within || 1);
    parts.push(`${phase} ${(median * 1000).toFixed(2)}`);
  }
  return parts.join(', ') || 'none';
}

// ---------------------------------------------------------------------------------------------
// The baseline (bench/query-baseline.ts): the same statements through pg and JSON.stringify.

async function startBaseline(port: number, statements: Record<string, Statement>): Promise<ChildProcess> {
  const child = fork(resolve(__dirname, 'query-baseline.js'), [], {
    env: { ...process.env, PORT: String(port), DATABASE_URL: databaseUrl(BROKER_DB) },
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.send(statements);
  const [message] = (await Promise.race([
    once(child, 'message'),
    once(child, 'exit').then(() => {
      throw new Error('the baseline server exited');
    }),
  ])) as [string];
  if (message !== 'ready') throw new Error(`unexpected message from the baseline: ${message}`);
  return child;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  for (const [name, value] of Object.entries({ ROWS, SAMPLES, DURATION, ITERATIONS })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  }
  mkdirSync(DATA_DIR, { recursive: true });
  const began = performance.now();
  // With the seconds since the run began, so that a log says where a long run spent its time.
  const load = () =>
    `${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${((performance.now() - began) / 1000).toFixed(0)} s into the run`;
  console.log(`${cpus().length} cores, load average ${load()}; node ${process.version}`);

  await dropDatabase(BROKER_DB);
  const brokerPort = await freePort();
  const token = `bench_${randomBytes(24).toString('base64url')}`;
  const broker = await startBroker(brokerPort, token);
  const stopOnSignal = () => broker.kill('SIGKILL');
  process.once('SIGINT', stopOnSignal);
  let baseline: ChildProcess | null = null;
  try {
    const setup = await prepare(brokerPort, token);
    const headers = {
      authorization: `Bearer ${setup.analystKey}`,
      'content-type': 'application/json',
    };
    const bodyA = JSON.stringify({ query: queryOf(PAGE_A) });
    const bodyB = JSON.stringify({ query: queryOf(PAGE_B) });

    // (c) and the statements, from a broker built in this process on the same database.
    const first = await send({ port: brokerPort, path: '/data/graphql' }, headers, bodyB);
    const someId = (JSON.parse(first.body) as { data: Record<string, { nodes: { id: string }[] }> }).data[
      SLUG
    ].nodes[0].id;
    const bodyO = JSON.stringify({ query: lookupOf(someId) });
    const inProcess = await decisionCost(token, setup.analystKey, [bodyA, bodyB, bodyO]);
    const [statementA, statementB, statementO] = inProcess.statements;
    // For EXPLAIN and the like: the statements as the broker runs them. The agreement's HMAC key (the
    // only bytea) is left out: any 32 bytes cost the same.
    writeFileSync(
      resolve(DATA_DIR, 'query-statements.json'),
      JSON.stringify(
        { a: statementA, b: statementB, o: statementO },
        (_key, value: unknown) =>
          value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer'
            ? `\\x${'00'.repeat(32)}`
            : value,
        2,
      ),
    );

    const baselinePort = await freePort();
    baseline = await startBaseline(baselinePort, { a: statementA, b: statementB, o: statementO });

    const brokerAt = { port: brokerPort, path: '/data/graphql' };
    const baseAt = (name: string) => ({ port: baselinePort, path: `/${name}` });
    const [writerA, writerB, writerO] = inProcess.writers;
    await verify(brokerAt, baseAt('a'), headers, bodyA, PAGE_A, writerA);
    await verify(brokerAt, baseAt('b'), headers, bodyB, PAGE_B, writerB);
    await verify(brokerAt, baseAt('o'), headers, bodyO, 1, writerO);

    console.log(`\n(a) ${PAGE_A} rows × 10 fields, one request at a time, alternating; load ${load()}`);
    const skipped = { p50: NaN, p95: NaN };
    const stepsBeforeA = await brokerSteps(brokerPort);
    const a = PARTS.includes('a')
      ? await latencies(brokerAt, baseAt('a'), headers, bodyA, SAMPLES)
      : { broker: skipped, baseline: skipped };
    const stepsA = stepsBetween(stepsBeforeA, await brokerSteps(brokerPort));

    console.log(
      `(b) ${PAGE_B}-row pages, ${CONNECTIONS} connections, ${DURATION} s each in ${ROUNDS} alternating rounds; ` +
        `load ${load()}`,
    );
    const auditBefore = await auditCount();
    const notRun = {
      result: { latency: { p50: NaN, p97_5: NaN }, '2xx': 0 },
      rate: NaN,
      cpu: null,
      pgCpu: null,
    };
    const b = PARTS.includes('b')
      ? await cannonPair(brokerAt, baseAt('b'), headers, bodyB, broker.pid!, baseline.pid!, DURATION)
      : { broker: notRun, baseline: notRun, ratio: NaN, ratios: [] as number[], seconds: 0 };
    const audited = (await auditCount()) - auditBefore;
    // A group commit's events share its time: the number of appends that wrote them.
    const groups = await withClient(BROKER_DB, async (c) =>
      Number(
        (await c.query(`SELECT count(DISTINCT at) AS n FROM audit_event WHERE seq > $1`, [auditBefore]))
          .rows[0].n,
      ),
    );

    // (o), supplementary: the broker's fixed cost per request, where the statement costs next to nothing.
    let overhead: string[] = ['not run'];
    let ratioO = NaN;
    if (PARTS.includes('o')) {
      console.log(`(o) one row by key, one at a time, then ${CONNECTIONS} connections; load ${load()}`);
      const stepsBeforeO = await brokerSteps(brokerPort);
      const o = await latencies(brokerAt, baseAt('o'), headers, bodyO, 5 * SAMPLES);
      const stepsO = stepsBetween(stepsBeforeO, await brokerSteps(brokerPort));
      const seconds = Math.max(1, Math.round(DURATION / 2));
      const pair = await cannonPair(
        brokerAt,
        baseAt('o'),
        headers,
        bodyO,
        broker.pid!,
        baseline.pid!,
        seconds,
      );
      const { broker: ob, baseline: oBase } = pair;
      ratioO = pair.ratio;
      overhead = [
        `one at a time: p50 broker ${o.broker.p50.toFixed(2)} ms, baseline ${o.baseline.p50.toFixed(2)} ms ` +
          `(+${(o.broker.p50 - o.baseline.p50).toFixed(2)} ms per request)`,
        `${CONNECTIONS} connections, ${ROUNDS} rounds of ${pair.seconds} s: broker ${ob.rate.toFixed(0)} req/s ` +
          `(CPU ${ob.cpu?.toFixed(2) ?? 'n/a'} s, PostgreSQL ${ob.pgCpu?.toFixed(2) ?? 'n/a'} s), baseline ` +
          `${oBase.rate.toFixed(0)} req/s (CPU ${oBase.cpu?.toFixed(2) ?? 'n/a'} s, PostgreSQL ` +
          `${oBase.pgCpu?.toFixed(2) ?? 'n/a'} s); ratio by round ${roundsText(pair.ratios)}`,
        `broker steps one at a time (median, ms; from broker_data_plane_phase_seconds): ${stepsO}`,
      ];
    }

    // (r): the same page through a broker that does not record releases, on the same database.
    let ratioR = NaN;
    let releases: string[] = ['not run'];
    if (PARTS.includes('r')) {
      const offPort = await freePort();
      const off = await startBroker(offPort, token, { RECORD_RELEASES: 'false' }, 'query-broker-off.log');
      try {
        console.log(`(r) ${PAGE_A}-row page, release recording on and off, alternating; load ${load()}`);
        const r = await latencies(
          brokerAt,
          { port: offPort, path: '/data/graphql' },
          headers,
          bodyA,
          SAMPLES,
        );
        ratioR = r.broker.p50 / r.baseline.p50;
        const [{ n, bytes }] = (
          await withClient(BROKER_DB, (c) =>
            c.query<{ n: number; bytes: string }>(
              `SELECT count(*)::int AS n, coalesce(sum(pg_column_size(rids)), 0)::bigint AS bytes FROM release_record`,
            ),
          )
        ).rows;
        releases = [
          `p50 on ${r.broker.p50.toFixed(2)} ms, off ${r.baseline.p50.toFixed(2)} ms; p95 on ` +
            `${r.broker.p95.toFixed(2)} ms, off ${r.baseline.p95.toFixed(2)} ms`,
          `stored: ${n} releases, ${(Number(bytes) / Math.max(1, n)).toFixed(0)} bytes of row ids per release on ` +
            `average (the GIN index and row headers come on top)`,
        ];
      } finally {
        await stopChild(off);
      }
    }

    // (g): an aggregate over a million rows against the same GROUP BY in raw SQL.
    let ratioG = NaN;
    let aggregates: string[] = ['not run'];
    if (PARTS.includes('g')) {
      const counts = await prepareCounts(brokerPort, setup);
      console.log(`(g) aggregate over ${AGG_ROWS.toLocaleString('en-US')} rows, alternating; load ${load()}`);
      const g = await aggregateLatencies(brokerAt, headers, counts.analystKey);
      ratioG = g.broker.p50 / g.raw.p50;
      aggregates = [
        `p50 broker ${g.broker.p50.toFixed(1)} ms, raw GROUP BY ${g.raw.p50.toFixed(1)} ms ` +
          `(${g.groups} groups, ${g.suppressed} suppressed)`,
      ];
    }

    // (l): a linked count over two datasets against the same join by hand.
    let ratioL = NaN;
    let linkedLines: string[] = ['not run'];
    if (PARTS.includes('l')) {
      const linked = await prepareLinked(brokerPort, setup);
      console.log(
        `(l) linked count over 2 × ${LINK_ROWS.toLocaleString('en-US')} rows, alternating; load ${load()}`,
      );
      const l = await linkedLatencies(brokerAt, headers, linked);
      ratioL = l.broker.p50 / l.raw.p50;
      linkedLines = [
        `p50 broker ${l.broker.p50.toFixed(1)} ms, join by hand ${l.raw.p50.toFixed(1)} ms (${l.groups} groups; ` +
          `largest count ${l.largest} via the broker, ${l.largestRaw} by hand)`,
      ];
    }
    // (m): the shapes of an analyst's queries against the SQL a DBA would write (bench/query-matrix.ts).
    let matrix: string[] = ['not run'];
    if (PARTS.includes('m')) {
      console.log(`(m) query matrix on ${MATRIX_ROWS.toLocaleString('en-US')} rows; load ${load()}`);
      matrix = await runMatrix({
        database: BROKER_DB,
        brokerPort,
        brokerPid: broker.pid!,
        brokerLog: resolve(DATA_DIR, 'query-broker.log'),
        operator: token,
        purpose: PURPOSE,
        ...setup,
        fields: FIELDS,
        csv: generateCsv,
        inProcess: () =>
          createBroker(
            loadConfig({
              DATABASE_URL: databaseUrl(BROKER_DB),
              BROKER_BOOTSTRAP_TOKEN: token,
              LOG_LEVEL: 'silent',
              QUEUE_PREFIX: 'bench',
            }),
            createLogger('silent'),
          ),
        startBaseline: async (statements) => {
          const port = await freePort();
          const child = await startBaseline(port, statements);
          return {
            port,
            pid: child.pid!,
            stop: async () => {
              child.disconnect();
              await stopChild(child);
            },
          };
        },
        latencies,
        cannonPair,
        send,
        load,
      });
    }

    const ratioA = a.broker.p50 / a.baseline.p50;
    const ratioB = b.ratio;
    const ms = (x: number) => x.toFixed(2).padStart(10);
    console.log('');
    console.log(
      `${''.padEnd(30)}${'p50 ms'.padStart(10)}${'p95 ms'.padStart(10)}${'req/s'.padStart(10)}` +
        `${'p50 ms'.padStart(10)}${'p97.5 ms'.padStart(10)}${'CPU s'.padStart(8)}${'PG CPU s'.padStart(10)}`,
    );
    console.log(`${''.padEnd(30)}${'(a)'.padStart(10)}${''.padStart(10)}${'(b)'.padStart(10)}`);
    for (const side of ['broker', 'baseline'] as const) {
      const name = side === 'broker' ? 'broker (/data/graphql)' : 'baseline (pg + JSON.stringify)';
      const r = b[side];
      console.log(
        name.padEnd(30) +
          ms(a[side].p50) +
          ms(a[side].p95) +
          r.rate.toFixed(0).padStart(10) +
          ms(r.result.latency.p50) +
          ms(r.result.latency.p97_5) +
          (r.cpu?.toFixed(2) ?? 'n/a').padStart(8) +
          (r.pgCpu?.toFixed(2) ?? 'n/a').padStart(10),
      );
    }
    if (b.ratios.length) console.log(`(b) throughput ratio by round: ${roundsText(b.ratios)}`);
    console.log(
      `(b) broker: ${b.broker.result['2xx']} answered in the timed run, audit events appended in the ` +
        `warm-up and timed runs: ${audited}, in ${groups} group commits (${(audited / groups).toFixed(1)} each)`,
    );
    if (PARTS.includes('a')) {
      console.log(`(a) broker steps (median, ms; from broker_data_plane_phase_seconds): ${stepsA}`);
    }
    console.log('');
    console.log('(o) supplementary, one row by its key (the SQL costs next to nothing):');
    for (const line of overhead) console.log(`    ${line}`);
    console.log(`(c) in-process decision, ${ITERATIONS.toLocaleString('en-US')} iterations × 3 rounds:`);
    for (const line of inProcess.report) console.log(`    ${line}`);
    console.log('(r) release recording:');
    for (const line of releases) console.log(`    ${line}`);
    console.log('(g) aggregate:');
    for (const line of aggregates) console.log(`    ${line}`);
    console.log('(l) linked count:');
    for (const line of linkedLines) console.log(`    ${line}`);
    console.log('(m) query matrix:');
    for (const line of matrix) console.log(`    ${line}`);
    console.log('');
    console.log(`ratio (a) p50 broker/baseline: ${ratioA.toFixed(2)}`);
    console.log(`ratio (b) throughput broker/baseline: ${ratioB.toFixed(2)}`);
    console.log(
      `ratio (o) lookup by key, ${CONNECTIONS} connections, throughput broker/baseline: ${ratioO.toFixed(2)}`,
    );
    console.log(`(c) decision µs/request: ${inProcess.decisionUs.toFixed(1)}`);
    console.log(`ratio (r) p50 recording on/off: ${ratioR.toFixed(2)}`);
    console.log(`ratio (g) p50 aggregate broker/raw GROUP BY: ${ratioG.toFixed(2)}`);
    console.log(`ratio (l) p50 linked count broker/join by hand: ${ratioL.toFixed(2)}`);
    // A part not run (NaN) is left out of the verdict; with none of them run, there is none.
    const judged = [
      ['(a)', ratioA, (v: number) => v <= TARGET_A, `≤ ${TARGET_A}`],
      ['(b)', ratioB, (v: number) => v >= TARGET_B, `≥ ${TARGET_B}`],
      ['(o)', ratioO, (v: number) => v >= TARGET_O, `≥ ${TARGET_O}`],
      ['(c)', inProcess.decisionUs, (v: number) => v <= TARGET_C, `≤ ${TARGET_C} µs`],
      ['(r)', ratioR, (v: number) => v <= TARGET_R, `≤ ${TARGET_R}`],
      ['(g)', ratioG, (v: number) => v <= TARGET_G, `≤ ${TARGET_G}`],
      ['(l)', ratioL, (v: number) => v <= TARGET_L, `≤ ${TARGET_L}`],
    ] as const;
    const ran = judged.filter(([, value]) => !Number.isNaN(value));
    const met = ran.every(([, value, ok]) => ok(value));
    console.log(
      ran.length
        ? `targets ${ran.map(([part, , , target]) => `${part} ${target}`).join(', ')}: ` +
            `${met ? 'met' : 'NOT met'}; load average ${load()}`
        : `targets of (a), (b), (o), (c), (r), (g), (l): not run; load average ${load()}`,
    );
  } finally {
    process.off('SIGINT', stopOnSignal);
    if (baseline) {
      baseline.disconnect();
      await stopChild(baseline);
    }
    await stopChild(broker);
    if (!process.env.BENCH_KEEP_DB) await dropDatabase(BROKER_DB);
  }
}

// ---------------------------------------------------------------------------------------------
// Setup through the broker's public API.

interface Setup {
  analystKey: string;
  datasetId: string;
  provider: string;
  recipient: string;
  providerSteward: string;
  recipientSteward: string;
  /** The oversight board's AUDITOR: the bench agreements release sensitive fields. */
  auditor: string;
}

async function prepare(port: number, operator: string): Promise<Setup> {
  const { g, provider, recipient, providerSteward, recipientSteward, analystKey, auditor } =
    await benchParties(port, operator, PURPOSE, 'Bench provider');
  const dataset = await g(
    providerSteward,
    `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
    { i: { slug: SLUG, title: 'Query benchmark people', keyField: 'id', fields: FIELDS } },
  );
  const datasetId = dataset.registerDataset.id as string;

  const csv = generateCsv(ROWS);
  const started = performance.now();
  const res = await post(
    port,
    `/api/datasets/${datasetId}/records`,
    { authorization: `Bearer ${providerSteward}`, 'content-type': 'text/csv' },
    csv,
  );
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 1000)}`);
  const report = JSON.parse(res.body) as { inserted: number };
  if (report.inserted !== ROWS) throw new Error(`ingest inserted ${report.inserted} of ${ROWS} rows`);
  console.log(
    `loaded ${ROWS.toLocaleString('en-US')} rows (${(csv.length / 1e6).toFixed(1)} MB of CSV) through ` +
      `POST /api/datasets/{id}/records in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // Statistics for the planner, as autovacuum would gather them shortly; the load's dirty pages
  // written now, not by the checkpointer while the parts are timed (it would slow only the side that
  // writes: the broker's audit commits wait for the WAL's flush).
  await withClient(BROKER_DB, async (c) => {
    await c.query(`VACUUM ANALYZE records.${SLUG}`);
    await c.query(`CHECKPOINT`);
  });

  await activateAgreement(
    port,
    { provider: providerSteward, recipient: recipientSteward, auditor },
    {
      title: 'Bench agreement',
      providerAgencyId: provider,
      recipientAgencyId: recipient,
      purposes: [PURPOSE],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          fields: FIELDS.map((f) => ({
            name: f.name,
            transform: TRANSFORMS[f.name] ?? 'RAW',
            justification: BENCH_JUSTIFICATION,
          })),
          rowFilter: ROW_FILTER,
        },
      ],
    },
  );
  return { analystKey, datasetId, provider, recipient, providerSteward, recipientSteward, auditor };
}

// ---------------------------------------------------------------------------------------------
// (g): counts of a million people.

const COUNT_FIELDS = [
  { name: 'id', type: 'INTEGER', classification: 'NON_SENSITIVE', required: true },
  { name: 'sex', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
  { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
  { name: 'offense', type: 'STRING', classification: 'SENSITIVE' },
];
const OFFENSES = ['THEFT', 'ASSAULT', 'DUI', 'DRUGS', 'FRAUD', 'BURGLARY', 'VANDALISM', 'ARSON'];
const AGGREGATE_QUERY = `{ ${AGG_SLUG}_aggregate(purpose: ${PURPOSE}, groupBy: [age_band, offense]) {
  groups { key count suppressed } } }`;
// The same grouping written by hand, with the same cheap integer band as the broker's statement.
const RAW_GROUP_BY = `SELECT age - (age % 5 + 5) % 5 AS age_band, offense, count(*)::int AS n
  FROM records.${AGG_SLUG} GROUP BY 1, 2`;

/** Registers and loads the counts dataset, and releases it AGGREGATE_ONLY to a second agency. */
async function prepareCounts(port: number, setup: Setup): Promise<{ analystKey: string }> {
  const g = <T = any>(key: string, query: string, variables?: Record<string, unknown>) =>
    gql<T>(port, key, query, variables);
  const dataset = await g(
    setup.providerSteward,
    `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
    { i: { slug: AGG_SLUG, title: 'Aggregate benchmark counts', keyField: 'id', fields: COUNT_FIELDS } },
  );
  const datasetId = dataset.registerDataset.id as string;
  const random = mulberry32(20261122);
  const lines = ['id,sex,age,offense'];
  for (let i = 0; i < AGG_ROWS; i++) {
    // Ages 18-94 skewed young, and a few dozen people of 95-97, whose groups are small and suppressed.
    const age = random() < 0.00004 ? 95 + Math.floor(3 * random()) : 18 + Math.floor(77 * random() ** 2);
    lines.push(
      `${i},${random() < 0.5 ? 'F' : 'M'},${age},${OFFENSES[Math.floor(OFFENSES.length * random() ** 1.5)]}`,
    );
  }
  const csv = lines.join('\n');
  const started = performance.now();
  const res = await post(
    port,
    `/api/datasets/${datasetId}/records`,
    { authorization: `Bearer ${setup.providerSteward}`, 'content-type': 'text/csv' },
    csv,
  );
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 1000)}`);
  console.log(
    `loaded ${AGG_ROWS.toLocaleString('en-US')} rows for (g) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  await withClient(BROKER_DB, async (c) => {
    await c.query(`VACUUM ANALYZE records.${AGG_SLUG}`);
    await c.query(`CHECKPOINT`);
  });
  await activateAgreement(port, parties(setup), {
    title: 'Bench counts',
    providerAgencyId: setup.provider,
    recipientAgencyId: setup.recipient,
    purposes: [PURPOSE],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [
      {
        datasetId,
        access: 'AGGREGATE_ONLY',
        fields: [
          { name: 'sex', justification: BENCH_JUSTIFICATION },
          { name: 'age', transform: 'GENERALIZE', justification: BENCH_JUSTIFICATION },
          { name: 'offense', justification: BENCH_JUSTIFICATION },
        ],
      },
    ],
  });
  return { analystKey: setup.analystKey };
}

/** p50 of the aggregate through the broker and of the raw GROUP BY through `pg`, alternating. */
async function aggregateLatencies(broker: Target, headers: Record<string, string>, analystKey: string) {
  const body = JSON.stringify({ query: AGGREGATE_QUERY });
  const auth = { ...headers, authorization: `Bearer ${analystKey}` };
  return withClient(BROKER_DB, async (client) => {
    const times = { broker: [] as number[], raw: [] as number[] };
    let groups = 0;
    let suppressed = 0;
    const warmUp = 3;
    for (let i = 0; i < warmUp + AGG_SAMPLES; i++) {
      for (const side of i % 2 ? (['raw', 'broker'] as const) : (['broker', 'raw'] as const)) {
        if (side === 'broker') {
          const res = await send(broker, auth, body);
          if (res.status !== 200) throw new Error(`broker answered ${res.status}: ${res.body.slice(0, 500)}`);
          const answer = (
            JSON.parse(res.body) as { data: Record<string, { groups: { suppressed: boolean }[] }> }
          ).data[`${AGG_SLUG}_aggregate`].groups;
          groups = answer.length;
          suppressed = answer.filter((x) => x.suppressed).length;
          if (i >= warmUp) times.broker.push(res.ms);
        } else {
          const started = performance.now();
          const { rows } = await client.query(RAW_GROUP_BY);
          if (!rows.length) throw new Error('the raw GROUP BY returned nothing');
          if (i >= warmUp) times.raw.push(performance.now() - started);
        }
      }
    }
    const p50 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.ceil(xs.length / 2) - 1];
    return { broker: { p50: p50(times.broker) }, raw: { p50: p50(times.raw) }, groups, suppressed };
  });
}

// ---------------------------------------------------------------------------------------------
// (l): a linked count (issue 13).

const LINK_COHORT = 'bench_link_cohort';
const LINK_OUTCOME = 'bench_link_outcome';
const LINK_QUERY = `{ ${LINK_COHORT}_aggregate(purpose: ${PURPOSE}, groupBy: [program],
  linked: { ${LINK_OUTCOME}: { on: booked_on, after: completed_on, minDays: 0, maxDays: 365 } }) {
  groups { key count } noise } }`;

interface LinkedSetup {
  runId: string;
  cohortId: string;
  outcomeId: string;
}

/**
 * Two datasets of LINK_ROWS rows each, registered through the API and filled in SQL (generate_series:
 * the REST ingest is measured elsewhere), one person per cohort record and the outcome's records
 * spread over 1.5 times as many persons, a linkage run in force assigning them, and an agreement
 * releasing both for counts with linkage.
 */
async function prepareLinked(port: number, setup: Setup): Promise<LinkedSetup> {
  const g = <T = any>(key: string, query: string, variables?: Record<string, unknown>) =>
    gql<T>(port, key, query, variables);
  const register = async (slug: string, fields: { name: string; type: string }[]) =>
    (
      await g(
        setup.providerSteward,
        `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`,
        {
          i: {
            slug,
            title: slug,
            keyField: 'id',
            fields: [
              { name: 'id', type: 'INTEGER', classification: 'NON_SENSITIVE', required: true },
              ...fields.map((f) => ({ ...f, classification: 'NON_SENSITIVE' })),
            ],
          },
        },
      )
    ).registerDataset.id as string;
  const cohortId = await register(LINK_COHORT, [
    { name: 'program', type: 'STRING' },
    { name: 'completed_on', type: 'DATE' },
  ]);
  const outcomeId = await register(LINK_OUTCOME, [{ name: 'booked_on', type: 'DATE' }]);
  const started = performance.now();
  const runId = await withClient(BROKER_DB, async (c) => {
    await c.query(
      `INSERT INTO records.${LINK_COHORT} (id, program, completed_on)
       SELECT i, (ARRAY['EMPLOYMENT','HOUSING','MENTORING','RECOVERY','THERAPY'])[1 + i % 5],
              CASE WHEN i % 4 = 0 THEN NULL ELSE DATE '2020-01-01' + (hashint4(i) & 2047) END
         FROM generate_series(1, $1::int) i`,
      [LINK_ROWS],
    );
    await c.query(
      `INSERT INTO records.${LINK_OUTCOME} (id, booked_on)
       SELECT i, DATE '2019-01-01' + (hashint4(i + 7) & 4095) FROM generate_series(1, $1::int) i`,
      [LINK_ROWS],
    );
    const { rows } = await c.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    const run = rows[0].id;
    await c.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1::uuid, $2::uuid, i::text, i FROM generate_series(1, $4::int) i
       UNION ALL
       SELECT $1::uuid, $3::uuid, i::text, 1 + (hashint4(i + 11) & 2147483647) % ($4::int * 3 / 2)
         FROM generate_series(1, $4::int) i`,
      [run, cohortId, outcomeId, LINK_ROWS],
    );
    await c.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run]);
    await c.query(`VACUUM ANALYZE records.${LINK_COHORT}`);
    await c.query(`VACUUM ANALYZE records.${LINK_OUTCOME}`);
    await c.query(`VACUUM ANALYZE linkage_person`);
    await c.query(`CHECKPOINT`);
    return run;
  });
  console.log(
    `loaded 2 × ${LINK_ROWS.toLocaleString('en-US')} rows and their linkage for (l) in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const grant = (datasetId: string, fields: string[]) => ({
    datasetId,
    access: 'AGGREGATE_ONLY',
    linkage: true,
    fields: fields.map((name) => ({ name })),
  });
  await activateAgreement(port, parties(setup), {
    title: 'Bench linked counts',
    providerAgencyId: setup.provider,
    recipientAgencyId: setup.recipient,
    purposes: [PURPOSE],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [grant(cohortId, ['program', 'completed_on']), grant(outcomeId, ['booked_on'])],
  });
  return { runId, cohortId, outcomeId };
}

/** p50 of the linked count through the broker and of the same join by hand through `pg`, alternating. */
async function linkedLatencies(broker: Target, headers: Record<string, string>, linked: LinkedSetup) {
  const body = JSON.stringify({ query: LINK_QUERY });
  // The join as one would write it by hand: the cohort's persons, a semi-join to the outcome's
  // records of the same person within the window, counted per program.
  const byHand = `SELECT c.program, count(*)::int AS n
      FROM records.${LINK_COHORT} c
      JOIN linkage_person pc ON pc.run_id = $1 AND pc.dataset_id = $2 AND pc.record_key = c.id::text
     WHERE EXISTS (SELECT 1 FROM linkage_person po
                     JOIN records.${LINK_OUTCOME} o ON o.id::text = po.record_key
                    WHERE po.run_id = $1 AND po.dataset_id = $3 AND po.person_id = pc.person_id
                      AND o.booked_on - c.completed_on BETWEEN 0 AND 365)
     GROUP BY c.program`;
  return withClient(BROKER_DB, async (client) => {
    const times = { broker: [] as number[], raw: [] as number[] };
    let groups = 0;
    let largest = 0;
    let largestRaw = 0;
    const warmUp = 2;
    for (let i = 0; i < warmUp + LINK_SAMPLES; i++) {
      for (const side of i % 2 ? (['raw', 'broker'] as const) : (['broker', 'raw'] as const)) {
        if (side === 'broker') {
          const res = await send(broker, headers, body);
          if (res.status !== 200) throw new Error(`broker answered ${res.status}: ${res.body.slice(0, 500)}`);
          const parsed = JSON.parse(res.body) as {
            data: Record<string, { groups: { count: number }[] }> | null;
            errors?: unknown;
          };
          if (!parsed.data) throw new Error(`broker refused: ${res.body.slice(0, 500)}`);
          const answer = parsed.data[`${LINK_COHORT}_aggregate`].groups;
          groups = answer.length;
          largest = Math.max(...answer.map((x) => x.count));
          if (i >= warmUp) times.broker.push(res.ms);
        } else {
          const started = performance.now();
          const { rows } = await client.query<{ n: number }>(byHand, [
            linked.runId,
            linked.cohortId,
            linked.outcomeId,
          ]);
          largestRaw = Math.max(...rows.map((r) => r.n));
          if (i >= warmUp) times.raw.push(performance.now() - started);
        }
      }
    }
    const p50 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.ceil(xs.length / 2) - 1];
    return { broker: { p50: p50(times.broker) }, raw: { p50: p50(times.raw) }, groups, largest, largestRaw };
  });
}

/** The same rows on every run: a seeded generator. */
function generateCsv(rows: number): string {
  const random = mulberry32(20240917);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const upTo = (n: number) => Math.floor(random() * n);
  const pad = (n: number) => String(n).padStart(2, '0');
  const lines = [FIELDS.map((f) => f.name).join(',')];
  for (let i = 0; i < rows; i++) {
    const id = 'Q' + (Math.imul(i + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0');
    // A county's names: few first names, many surnames (about 230,000 full names in all, a few
    // records each, as an identifier's HASH filter meets them); one in twenty written last name first.
    const last = `${pick(LAST)}${pick(SYLLABLES)}${pick(SYLLABLES)}`;
    const name = random() < 0.05 ? `"${last}, ${pick(FIRST)}"` : `${pick(FIRST)} ${last}`;
    const city = random() < 0.05 ? '' : pick(CITIES);
    const visits = random() < 0.1 ? '' : String(upTo(100_000));
    const score = (random() * 1000).toFixed(3);
    const balance = random() < 0.05 ? '' : (random() * 2_000_000 - 1_000_000).toFixed(2);
    const active = random() < 0.5 ? 'true' : 'false';
    const birth = `${1930 + upTo(90)}-${pad(1 + upTo(12))}-${pad(1 + upTo(28))}`;
    const at = `2024-${pad(1 + upTo(12))}-${pad(1 + upTo(28))}T${pad(upTo(24))}:${pad(upTo(60))}:${pad(upTo(60))}Z`;
    lines.push(`${id},${name},${city},${upTo(100)},${visits},${score},${balance},${active},${birth},${at}`);
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// (c) and the statements: a broker application in this process, on the same database.

async function decisionCost(
  operatorKey: string,
  analystKey: string,
  bodies: string[],
): Promise<{ statements: Statement[]; writers: NodeJsonWriter[]; decisionUs: number; report: string[] }> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl(BROKER_DB),
    BROKER_BOOTSTRAP_TOKEN: operatorKey,
    LOG_LEVEL: 'silent',
    QUEUE_PREFIX: 'bench',
  });
  const app = await createBroker(config, createLogger('silent'));
  try {
    const auth = app.get(AuthService);
    const agreements = app.get(AgreementService);
    const policies = app.get(PolicyCache);
    const dataPlane = app.get(DataPlaneService);
    const audit = app.get(AuditService);
    const principal = (await auth.authenticate(analystKey))!;
    const agencyId = principal.agencyId!;

    const decideOnce = (body: string) => {
      const request = JSON.parse(body) as { query: string };
      if (precheck(principal, request)) throw new Error('precheck refused the bench query');
      return request;
    };
    const stamp = await agreements.stamp(agencyId);
    // Fills the cache as a request would.
    await policies.forAgency(agencyId, new Date());
    const writers: NodeJsonWriter[] = [];
    const statements = bodies.map((body) => {
      const policy = policies.cached(agencyId, stamp, new Date())!;
      const decision = dataPlane.decide(policy, decideOnce(body));
      if (decision.kind !== 'run')
        throw new Error(`the bench query was not allowed: ${JSON.stringify(decision)}`);
      const statement = pageSql(decision.plans[0]);
      writers.push(statement.writer);
      return { text: statement.text, values: statement.values };
    });

    // Every iteration gets a request object of its own, as JSON.parse of the body gives the broker:
    // a fresh query string, whose hash nothing has computed yet. Parsing them is not timed.
    const round = (withSql: boolean): number => {
      const requests = Array.from({ length: ITERATIONS }, () => JSON.parse(bodies[0]) as { query: string });
      const started = process.hrtime.bigint();
      for (let i = 0; i < ITERATIONS; i++) {
        const request = requests[i];
        if (precheck(principal, request)) throw new Error('refused');
        const policy = policies.cached(agencyId, stamp, new Date());
        if (!policy) throw new Error('the policy cache missed');
        const decision = dataPlane.decide(policy, request);
        if (decision.kind !== 'run') throw new Error('refused');
        if (withSql) pageSql(decision.plans[0]);
      }
      return Number(process.hrtime.bigint() - started) / 1000 / ITERATIONS;
    };
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    if (!PARTS.includes('c')) return { statements, writers, decisionUs: NaN, report: ['not run'] };
    round(false);
    round(true);
    const decision = median([round(false), round(false), round(false)]);
    const withSql = median([round(true), round(true), round(true)]);

    // The I/O of a request, one at a time, for scale: what (c) leaves out.
    const timeIo = async (n: number, run: () => Promise<unknown>) => {
      for (let i = 0; i < 50; i++) await run();
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await run();
      return Number(process.hrtime.bigint() - started) / 1000 / n;
    };
    const stampUs = await timeIo(2000, () => agreements.stamp(agencyId));
    const authUs = await timeIo(2000, () => auth.authenticate(analystKey));
    // An event like the data plane's, in a transaction of its own: the head's lock and a commit.
    const auditUs = await timeIo(500, () =>
      audit.append({
        actorUserId: principal.userId,
        actorAgencyId: agencyId,
        action: AuditAction.QUERY,
        decision: 'ALLOW',
        purpose: PURPOSE,
        fields: RELEASED,
        rowCount: PAGE_B,
      }),
    );
    return {
      statements,
      writers,
      decisionUs: decision,
      report: [
        `precheck + policy cache hit + parse + validate + variables + plan/authorise: ${decision.toFixed(1)} µs`,
        `the same + building the SQL text (pageSql): ${withSql.toFixed(1)} µs`,
        `not included, for scale (round trips, one at a time): policy stamp read ${stampUs.toFixed(0)} µs, ` +
          `API key lookup ${authUs.toFixed(0)} µs, audit append (own transaction) ${auditUs.toFixed(0)} µs`,
      ],
    };
  } finally {
    await app.close();
  }
}

// ---------------------------------------------------------------------------------------------
// (a), (b) and the check that both sides answer the same rows.

interface Target {
  port: number;
  path: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

async function verify(
  broker: Target,
  base: Target,
  headers: Record<string, string>,
  body: string,
  n: number,
  writer: NodeJsonWriter,
) {
  const fromBroker = await send(broker, headers, body);
  const fromBase = await send(base, headers, body);
  if (fromBroker.status !== 200 || fromBase.status !== 200) {
    throw new Error(`answers ${fromBroker.status} / ${fromBase.status}: ${fromBroker.body.slice(0, 500)}`);
  }
  const page = (JSON.parse(fromBroker.body) as { data: Record<string, { nodes: unknown[] }> }).data[SLUG];
  // The statement's rows: one per node (and one more when there is a next page), values as text.
  const rows = JSON.parse(fromBase.body) as NodeTexts[];
  const baseNodes = rows.slice(0, n).map((row) => JSON.parse(writer.write(row).json) as unknown);
  if (page.nodes.length !== n || !isDeepStrictEqual(page.nodes, baseNodes)) {
    throw new Error(
      `the broker and the baseline answer different rows (${page.nodes.length} / ${baseNodes.length})`,
    );
  }
  console.log(
    `verified: broker and baseline return the same ${n} rows (${(fromBroker.body.length / 1024).toFixed(1)} KB / ` +
      `${(fromBase.body.length / 1024).toFixed(1)} KB of response body)`,
  );
}

async function latencies(
  broker: Target,
  base: Target,
  headers: Record<string, string>,
  body: string,
  samples: number,
) {
  const times = { broker: [] as number[], baseline: [] as number[] };
  const warmUp = Math.max(5, Math.round(samples / 10));
  for (let i = 0; i < warmUp + samples; i++) {
    // Alternating, so that both sides see the same machine, whatever else it is doing.
    for (const side of i % 2 ? (['baseline', 'broker'] as const) : (['broker', 'baseline'] as const)) {
      const res = await send(side === 'broker' ? broker : base, headers, body);
      if (res.status !== 200) throw new Error(`${side} answered ${res.status}: ${res.body.slice(0, 500)}`);
      if (i >= warmUp) times[side].push(res.ms);
    }
  }
  const pct = (xs: number[], p: number) => {
    const sorted = [...xs].sort((x, y) => x - y);
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  };
  return {
    broker: { p50: pct(times.broker, 50), p95: pct(times.broker, 95) },
    baseline: { p50: pct(times.baseline, 50), p95: pct(times.baseline, 95) },
  };
}

/** A part's ratios by round, and their median. */
function roundsText(ratios: number[]): string {
  return `${ratios.map((r) => r.toFixed(2)).join(' ')} (median ${median(ratios).toFixed(2)})`;
}

/**
 * Both sides of a throughput part in ROUNDS alternating rounds (broker then baseline, then baseline
 * then broker, and so on), each side warmed up once first. The machine's speed moves over seconds
 * (one run's baseline answered 1,700 to 2,600 req/s from one part to the next), so the ratio of two
 * runs ten seconds apart carries that drift: here the ratio is the median of the rounds' ratios, each
 * of two runs a few seconds apart. A side's figures add its rounds up: its rate over all its
 * seconds, CPU over all of them, and the median of its rounds' latency percentiles.
 */
export async function cannonPair(
  brokerAt: Target,
  baseAt: Target,
  headers: Record<string, string>,
  body: string,
  brokerPid: number,
  basePid: number,
  duration: number,
  {
    rounds = ROUNDS,
    warmup = 2,
    baseBody = body,
  }: { rounds?: number; warmup?: number; baseBody?: string } = {},
) {
  const seconds = Math.max(1, Math.round(duration / rounds));
  type Run = Awaited<ReturnType<typeof cannon>>;
  const runs: { broker: Run[]; baseline: Run[] } = { broker: [], baseline: [] };
  const run = async (side: 'broker' | 'baseline', round: number) => {
    const warm = round === 0 ? warmup : 0;
    runs[side].push(
      side === 'broker'
        ? await cannon('broker', brokerAt, headers, body, brokerPid, seconds, warm)
        : await cannon('baseline', baseAt, headers, baseBody, basePid, seconds, warm),
    );
  };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? (['baseline', 'broker'] as const) : (['broker', 'baseline'] as const);
    for (const side of order) await run(side, round);
  }
  const total = (side: Run[]) => {
    const sum = (pick: (r: Run) => number | null) =>
      side.some((r) => pick(r) === null) ? null : side.reduce((t, r) => t + pick(r)!, 0);
    const answered = side.reduce((t, r) => t + r.result['2xx'], 0);
    return {
      result: {
        latency: {
          p50: median(side.map((r) => r.result.latency.p50)),
          p97_5: median(side.map((r) => r.result.latency.p97_5)),
        },
        '2xx': answered,
      },
      rate: answered / side.reduce((t, r) => t + r.result.duration, 0),
      cpu: sum((r) => r.cpu),
      pgCpu: sum((r) => r.pgCpu),
    };
  };
  const ratios = runs.broker.map((r, i) => r.rate / runs.baseline[i].rate);
  return {
    broker: total(runs.broker),
    baseline: total(runs.baseline),
    ratio: median(ratios),
    ratios,
    seconds,
  };
}

async function cannon(
  name: string,
  at: Target,
  headers: Record<string, string>,
  body: string,
  pid: number,
  duration = DURATION,
  warmup = 2,
) {
  const expected = await send(at, headers, body);
  const options = {
    url: `http://127.0.0.1:${at.port}${at.path}`,
    method: 'POST',
    headers,
    body,
    connections: CONNECTIONS,
    // Every answer must be the expected page: an error or refusal counts as a mismatch.
    expectBody: expected.body,
  };
  if (warmup > 0) await autocannon({ ...options, duration: warmup });
  const cpuBefore = cpuSeconds(pid);
  const pgBefore = postgresCpu();
  const result = await autocannon({ ...options, duration });
  const cpuAfter = cpuSeconds(pid);
  const pgCpu = postgresCpuSince(pgBefore);
  const bad = result.errors + result.timeouts + result.non2xx + result.mismatches;
  if (bad) {
    throw new Error(
      `${name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx, ` +
        `${result.mismatches} unexpected bodies`,
    );
  }
  return {
    result,
    rate: result['2xx'] / result.duration,
    cpu: cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null,
    pgCpu,
  };
}

function send(
  at: Target,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = request(
      { host: '127.0.0.1', port: at.port, path: at.path, method: 'POST', headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// Processes, databases, HTTP.

async function auditCount(): Promise<number> {
  return withClient(BROKER_DB, async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM audit_event`)).rows[0].n),
  );
}

/** CPU seconds of every process named postgres (server and backends) by pid, or null. */
function postgresCpu(): Map<string, number> | null {
  try {
    const cpu = new Map<string, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (!stat.includes('(postgres)')) continue;
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpu.set(entry, (Number(fields[11]) + Number(fields[12])) / 100);
      } catch {
        // The process ended meanwhile.
      }
    }
    return cpu;
  } catch {
    return null;
  }
}

/** PostgreSQL's CPU seconds between two samples: backends that ended meanwhile are not counted. */
function postgresCpuSince(before: Map<string, number> | null): number | null {
  const after = postgresCpu();
  if (!before || !after) return null;
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/** The broker as deployed: the built main.js, its default log level unless BENCH_LOG_LEVEL is set. */
async function startBroker(
  port: number,
  token: string,
  extraEnv: Record<string, string> = {},
  logName = 'query-broker.log',
): Promise<ChildProcess> {
  // The broker writes its log straight to the file, as it would to a log collector: through a pipe
  // that this process drains, its synchronous log writes would wait for autocannon's event loop.
  const logPath = resolve(DATA_DIR, logName);
  const log = openSync(logPath, 'w');
  // e.g. BENCH_BROKER_NODE_ARGS=--cpu-prof to profile the broker.
  const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl(BROKER_DB),
    BROKER_BOOTSTRAP_TOKEN: token,
    QUEUE_PREFIX: 'bench',
    // (g) and (l) ask perturbed aggregates far past an analyst's, and an agreement's, daily budget.
    AGGREGATE_DAILY_BUDGET: '1000000',
    AGGREGATE_AGREEMENT_DAILY_BUDGET: '1000000',
    ...extraEnv,
  };
  if (process.env.BENCH_LOG_LEVEL) env.LOG_LEVEL = process.env.BENCH_LOG_LEVEL;
  else delete env.LOG_LEVEL;
  const child = spawn(process.execPath, [...nodeArgs, BROKER_MAIN], {
    env,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  return waitForBroker(child, port, token, logPath);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:query failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

/** The keys that propose and approve the benches' agreements. */
function parties(setup: Setup) {
  return { provider: setup.providerSteward, recipient: setup.recipientSteward, auditor: setup.auditor };
}
