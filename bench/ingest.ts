/**
 * `npm run bench:ingest`: streams a CSV of BENCH_ROWS (default 1,000,000) rows × 10 typed fields
 * through the broker's REST ingest route and compares it with `psql \copy` of the same file into an
 * identical table, in the same run. Target: broker ≥ 0.7× psql's rows per second, with the broker's
 * peak RSS (VmHWM) under 300 MB. See docs/benchmarks.md.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
} from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  BROKER_MAIN,
  cpuSeconds,
  databaseUrl,
  dropDatabase,
  freePort,
  gql,
  mulberry32,
  post,
  stopChild,
  waitForBroker,
  withClient,
} from './bench-support';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
// Each run loads the file once through the broker and once with psql; a shared machine's load
// varies from one minute to the next, and the median of several runs says more than one.
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
// The server of the broker's default DATABASE_URL; override to bench elsewhere.
const BROKER_DB = 'broker_bench';
const PSQL_DB = 'broker_bench_psql';
const SLUG = 'bench_people';
const TABLE = `records.${SLUG}`;
const TARGET_RATIO = 0.7;
const TARGET_PEAK_MB = 300;

// Compiled to dist/bench/ingest.js; the data lives in the source tree's bench/.data (gitignored).
const ROOT = resolve(__dirname, '..', '..');
const DATA_DIR = resolve(ROOT, 'bench', '.data');
const BROKER_LOG = resolve(DATA_DIR, 'broker.log');

/** The dataset: a STRING key, strings, integers, floats, a boolean, a date and a date-time. */
const FIELDS = [
  { name: 'id', type: 'STRING', classification: 'DIRECT_IDENTIFIER', required: true },
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

const FIRST = [
  'Ada',
  'Grace',
  'Alan',
  'Edsger',
  'Barbara',
  'Donald',
  'Frances',
  'Ken',
  'Radia',
  'Linus',
  'Margaret',
  'John',
];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Allen',
  'Thompson',
  'Perlman',
  "O'Neil",
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

interface Result {
  seconds: number;
  peakMb: number | null;
}

async function main() {
  if (!Number.isInteger(ROWS) || ROWS < 1)
    throw new Error(`BENCH_ROWS must be a positive integer, not ${ROWS}`);
  if (!Number.isInteger(RUNS) || RUNS < 1)
    throw new Error(`BENCH_RUNS must be a positive integer, not ${RUNS}`);
  const file = await ensureCsv(ROWS);
  const size = statSync(file).size;
  console.log(`data: ${file} (${ROWS.toLocaleString('en-US')} rows, ${(size / 1e6).toFixed(1)} MB)`);

  const ratios: number[] = [];
  let met = true;
  for (let run = 1; run <= RUNS; run++) {
    // The two loads compete for the machine's cores: a busy machine shows in the load average.
    const load = () =>
      loadavg()
        .map((l) => l.toFixed(2))
        .join(' ');
    console.log(`\nrun ${run} of ${RUNS}: ${cpus().length} cores, load average ${load()}`);
    await recreateDatabase(BROKER_DB, false);
    await recreateDatabase(PSQL_DB, true);

    const { result: broker, tableDdl } = await benchBroker(file, size);
    const psql = await benchPsql(file, tableDdl);

    const brokerCount = await countRows(BROKER_DB);
    const psqlCount = await countRows(PSQL_DB);
    if (brokerCount !== ROWS || psqlCount !== ROWS) {
      throw new Error(`row counts differ from ${ROWS}: broker table ${brokerCount}, psql table ${psqlCount}`);
    }
    console.log(`verified: both tables hold ${ROWS.toLocaleString('en-US')} rows; load average ${load()}`);
    await dropDatabase(BROKER_DB);
    await dropDatabase(PSQL_DB);

    const rate = (r: Result) => ROWS / r.seconds;
    const ratio = rate(broker) / rate(psql);
    const line = (name: string, r: Result) =>
      name.padEnd(22) +
      Math.round(rate(r)).toLocaleString('en-US').padStart(12) +
      r.seconds.toFixed(2).padStart(10) +
      (r.peakMb === null ? 'n/a' : r.peakMb.toFixed(1)).padStart(10);
    console.log('');
    console.log(`${''.padEnd(22)}${'rows/s'.padStart(12)}${'seconds'.padStart(10)}${'peak MB'.padStart(10)}`);
    console.log(line('broker (REST, CSV)', broker));
    console.log(line('psql \\copy', psql));
    console.log(`ratio (broker/psql rows per second): ${ratio.toFixed(2)}`);
    ratios.push(ratio);
    met &&= broker.peakMb !== null && broker.peakMb < TARGET_PEAK_MB;
  }
  const median = [...ratios].sort((x, y) => x - y)[Math.floor((ratios.length - 1) / 2)];
  if (RUNS > 1) {
    console.log(`\nratios: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${median.toFixed(2)}`);
  }
  met &&= median >= TARGET_RATIO;
  console.log(
    `target (ratio ≥ ${TARGET_RATIO}, broker peak < ${TARGET_PEAK_MB} MB): ${met ? 'met' : 'NOT met'}`,
  );
}

/** Writes the CSV once per row count; the same seed gives the same bytes on every machine. */
async function ensureCsv(rows: number): Promise<string> {
  mkdirSync(DATA_DIR, { recursive: true });
  const file = resolve(DATA_DIR, `ingest-${rows}.csv`);
  if (existsSync(file)) return file;
  console.log(`generating ${file} ...`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial);
  const random = mulberry32(20240501);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const pad = (n: number) => String(n).padStart(2, '0');
  const upTo = (n: number) => Math.floor(random() * n);
  out.write(FIELDS.map((f) => f.name).join(',') + '\n');
  let chunk = '';
  for (let i = 0; i < rows; i++) {
    // A bijection of the 32-bit row number: unique keys that arrive in no particular order.
    const id = 'P' + (Math.imul(i + 1, 0x9e3779b1) >>> 0).toString(16).padStart(8, '0');
    const first = pick(FIRST);
    const last = pick(LAST);
    // Some names hold a comma, so the file exercises CSV quoting.
    const fullName = random() < 0.05 ? `"${last}, ${first}"` : `${first} ${last}`;
    const city = random() < 0.05 ? '' : pick(CITIES);
    const age = upTo(100);
    const visits = random() < 0.1 ? '' : String(upTo(100_000));
    const score = (random() * 1000).toFixed(3);
    const balance = random() < 0.05 ? '' : (random() * 2_000_000 - 1_000_000).toFixed(2);
    const active = random() < 0.5 ? 'true' : 'false';
    const birth = `${1930 + upTo(90)}-${pad(1 + upTo(12))}-${pad(1 + upTo(28))}`;
    const recorded = `2024-${pad(1 + upTo(12))}-${pad(1 + upTo(28))}T${pad(upTo(24))}:${pad(upTo(60))}:${pad(upTo(60))}Z`;
    chunk += `${id},${fullName},${city},${age},${visits},${score},${balance},${active},${birth},${recorded}\n`;
    if (chunk.length >= 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  renameSync(partial, file);
  return file;
}

/** Drops the database; recreates it when asked (the broker creates and migrates its own at start). */
async function recreateDatabase(name: string, create: boolean) {
  await dropDatabase(name);
  if (create) await withClient('postgres', (c) => c.query(`CREATE DATABASE "${name}"`));
}

async function countRows(database: string): Promise<number> {
  return withClient(database, async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM ${TABLE}`)).rows[0].n),
  );
}

/** Flushes dirty pages first, so that neither load pays for the other's checkpoint. */
async function checkpoint() {
  await withClient('postgres', (c) => c.query('CHECKPOINT'));
}

/** The peak resident set of a live process in MB, or null where /proc is not available. */
function peakMb(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

async function startBroker(port: number, token: string): Promise<ChildProcess> {
  const log = createWriteStream(BROKER_LOG);
  // e.g. BENCH_BROKER_NODE_ARGS=--cpu-prof to profile the broker (Node refuses it in NODE_OPTIONS).
  const nodeArgs = (process.env.BENCH_BROKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, BROKER_MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(BROKER_DB),
      BROKER_BOOTSTRAP_TOKEN: token,
      // Info, so that the log holds the ingestion's timings; read below.
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      // Keeps the bench's queues apart from a broker or tests sharing the Redis.
      QUEUE_PREFIX: 'bench',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return waitForBroker(child, port, token, BROKER_LOG);
}

/** The broker's own account of the ingestion (its "ingestion applied" log line), if it logged one. */
function brokerTimings(): string | null {
  try {
    for (const text of readFileSync(BROKER_LOG, 'utf8').split('\n')) {
      if (!text.includes('"ingestion applied"')) continue;
      const entry = JSON.parse(text) as { mode?: string; readMs?: number; applyMs?: number };
      if (entry.readMs === undefined) return null;
      return `${entry.mode} load; reading and COPYing ${(entry.readMs / 1000).toFixed(2)} s, applying ${((entry.applyMs ?? 0) / 1000).toFixed(2)} s`;
    }
  } catch {
    // The log is a help, not a requirement.
  }
  return null;
}

async function benchBroker(file: string, size: number): Promise<{ result: Result; tableDdl: string }> {
  const port = await freePort();
  const token = `bench_${randomBytes(24).toString('base64url')}`;
  const child = await startBroker(port, token);
  const stop = () => child.kill('SIGKILL');
  process.once('SIGINT', stop);
  try {
    const agency = await gql<{ createAgency: { id: string } }>(
      port,
      token,
      `mutation($input: CreateAgencyInput!) { createAgency(input: $input) { id } }`,
      { input: { name: 'Bench Agency', kind: 'benchmark' } },
    );
    const user = await gql<{ createUser: { apiKey: string } }>(
      port,
      token,
      `mutation($input: CreateUserInput!) { createUser(input: $input) { user { id } apiKey } }`,
      { input: { agencyId: agency.createAgency.id, email: 'steward@bench.example', role: 'STEWARD' } },
    );
    // The operator's key is an invitation: the steward rotates it before using it.
    const rotated = await gql<{ rotateApiKey: { apiKey: string } }>(
      port,
      user.createUser.apiKey,
      `mutation { rotateApiKey { apiKey } }`,
    );
    const steward = rotated.rotateApiKey.apiKey;
    const dataset = await gql<{ registerDataset: { id: string } }>(
      port,
      steward,
      `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id } }`,
      {
        input: {
          slug: SLUG,
          title: 'Benchmark people',
          keyField: 'id',
          fields: FIELDS.map(({ name, type, classification, required }) => ({
            name,
            type,
            classification,
            required,
          })),
        },
      },
    );
    // psql loads into a copy of the record table as the broker made it: columns, defaults, keys, indexes.
    const tableDdl = await dumpTableDdl();

    await checkpoint();
    const idleMb = peakMb(child.pid!);
    const cpuBefore = cpuSeconds(child.pid!);
    const started = performance.now();
    const res = await post(
      port,
      `/api/datasets/${dataset.registerDataset.id}/records`,
      { authorization: `Bearer ${steward}`, 'content-type': 'text/csv', 'content-length': size },
      createReadStream(file, { highWaterMark: 256 * 1024 }),
    );
    const seconds = (performance.now() - started) / 1000;
    const peak = peakMb(child.pid!);
    const cpuAfter = cpuSeconds(child.pid!);
    if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 2000)}`);
    const report = JSON.parse(res.body) as { inserted: number; updated: number; rejected: number };
    if (report.inserted !== ROWS || report.updated !== 0 || report.rejected !== 0) {
      throw new Error(`unexpected ingest report: ${res.body.slice(0, 2000)}`);
    }
    console.log(
      `broker: ${report.inserted.toLocaleString('en-US')} inserted in ${seconds.toFixed(2)} s; ` +
        `VmHWM ${idleMb?.toFixed(1) ?? 'n/a'} MB before the upload, ${peak?.toFixed(1) ?? 'n/a'} MB after`,
    );
    // Against the wall time, the broker's own CPU time says whether Node or PostgreSQL held the load up.
    if (cpuBefore !== null && cpuAfter !== null) {
      console.log(
        `broker: the Node process used ${(cpuAfter - cpuBefore).toFixed(2)} s of CPU during the upload`,
      );
    }
    await stopChild(child);
    const timings = brokerTimings();
    if (timings) console.log(`broker: ${timings}`);
    return { result: { seconds, peakMb: peak }, tableDdl };
  } finally {
    process.off('SIGINT', stop);
    await stopChild(child);
  }
}

async function dumpTableDdl(): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'pg_dump',
    ['--schema-only', '--no-owner', '--no-privileges', '--table', TABLE, databaseUrl(BROKER_DB)],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return stdout;
}

/** Runs psql on the bench's database; its peak RSS is sampled while it runs, as /proc forgets it on exit. */
async function psql(args: string[], input?: string): Promise<Result> {
  const started = performance.now();
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl(PSQL_DB), ...args], {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'inherit'],
  });
  child.stdin?.end(input);
  let peak: number | null = null;
  const sampler = setInterval(() => (peak = peakMb(child.pid!) ?? peak), 50);
  const [code] = (await once(child, 'exit')) as [number | null];
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  if (code !== 0) throw new Error(`psql ${args.join(' ')} exited with ${code}`);
  return { seconds, peakMb: peak };
}

async function benchPsql(file: string, tableDdl: string): Promise<Result> {
  await withClient(PSQL_DB, (c) => c.query('CREATE SCHEMA records'));
  // Through psql, which reads pg_dump's meta-commands.
  await psql(['-f', '-'], tableDdl);
  await checkpoint();
  const columns = FIELDS.map((f) => f.name).join(', ');
  const copy = `\\copy ${TABLE} (${columns}) FROM '${file.replace(/'/g, "''")}' WITH (FORMAT csv, HEADER true)`;
  const result = await psql(['-c', copy]);
  console.log(`psql: ${ROWS.toLocaleString('en-US')} rows copied in ${result.seconds.toFixed(2)} s`);
  return result;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:ingest failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
