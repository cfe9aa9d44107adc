/**
 * `npm run demo`: a broker and a worker on a fresh demo database, seeded with the synthetic county
 * through the public API, then the URLs and one API key per role. Runs until Ctrl-C.
 *
 * Environment: DEMO_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/broker_demo; dropped
 * and recreated each run, so its name must contain "demo"), PORT (3000), HOST (127.0.0.1),
 * REDIS_URL (redis://127.0.0.1:6379), DEMO_QUEUE_PREFIX (demo; its queues are emptied each run),
 * DEMO_PEOPLE (5000), DEMO_SEED (2025), DEMO_VERBOSE=1 to stream the broker's and worker's logs,
 * LOG_LEVEL (theirs; info). Writes `demo.env` (keys, ids, the database) in the working directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Redis from 'ioredis';
import { databaseName, dropDatabase, ensureDatabase, redactUrl } from '@broker/core';
// The scenario directly, not through @broker/testing, whose index also loads the in-process
// TestBroker and with it the whole broker application.
import {
  COUNTY_PROPOSAL_AWAITING_OVERSIGHT,
  COUNTY_RETENTION,
  RECIDIVISM_COUNT_AGREEMENTS,
  type SeededCounty,
  httpBrokerClient,
  seedCounty,
} from '../libs/testing/src/scenario/seed-county';
import { DEMO_COUNTY, DEMO_ENV_FILE, demoEnv } from '../libs/testing/src/scenario/demo-env';
import { RECIDIVISM_QUERY, recidivismLines } from '../libs/testing/src/scenario/recidivism';

const DATABASE_URL = process.env.DEMO_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/broker_demo';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 3000);
const QUEUE_PREFIX = process.env.DEMO_QUEUE_PREFIX || 'demo';
// 5,000 people: enough completers per program that the recidivism counts reach the minimum cell size.
const PEOPLE = Number(process.env.DEMO_PEOPLE || DEMO_COUNTY.people);
// A number seed and its text are different seeds; digits mean the number, as seedCounty's default.
const SEED_TEXT = process.env.DEMO_SEED || String(DEMO_COUNTY.seed);
const SEED = /^\d+$/.test(SEED_TEXT) ? Number(SEED_TEXT) : SEED_TEXT;
const VERBOSE = process.env.DEMO_VERBOSE === '1';
const HEALTH_TIMEOUT_MS = Number(process.env.DEMO_HEALTH_TIMEOUT_MS || 60_000);
const STOP_TIMEOUT_MS = 10_000;
/** How much of a child's output is kept to show when it dies. */
const OUTPUT_LIMIT = 64 * 1024;

// Compiled to dist/scripts/demo.js; the apps sit beside it under dist/apps.
const DIST = resolve(__dirname, '..');
const BROKER_MAIN = resolve(DIST, 'apps', 'broker', 'src', 'main.js');
const WORKER_MAIN = resolve(DIST, 'apps', 'worker', 'src', 'main.js');

/** A failure with a message meant for the person running the demo (printed without a stack). */
class DemoError extends Error {}

/** A child process and the tail of what it wrote. */
interface Child {
  name: string;
  process: ChildProcess;
  output: string;
  exited: Promise<void>;
}

const children: Child[] = [];
let stopping = false;

function say(message = '') {
  process.stdout.write(`${message}\n`);
}

/** Starts an app as a child process, keeping the tail of its output (streaming it if DEMO_VERBOSE). */
function startChild(name: string, main: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own: Ctrl-C reaches the demo alone, which then stops the children in order.
    detached: true,
  });
  const entry: Child = {
    name,
    process: child,
    output: '',
    exited: new Promise((done) => child.once('exit', () => done())),
  };
  const keep = (chunk: Buffer) => {
    entry.output = (entry.output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    if (VERBOSE) process.stderr.write(`[${name}] ${chunk.toString('utf8')}`);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(
      `\nThe ${name} exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`}). Its output:\n` +
        `${entry.output.trim() || '(none)'}\n`,
    );
    void shutdown(1);
  });
  children.push(entry);
  return entry;
}

/** Stops the children (SIGTERM, then SIGKILL after a grace period) and exits with `code`. */
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.all(
      children.map(async (child) => {
        if (child.process.exitCode !== null || child.process.signalCode !== null) return;
        child.process.kill('SIGTERM');
        const timer = setTimeout(() => child.process.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await child.exited;
        clearTimeout(timer);
      }),
    );
    if (code === 0) say('Stopped.');
  }
  process.exit(code);
}

/**
 * Refuses, before touching anything, a database or queue prefix that is not the demo's own: every
 * such problem at once, so that one restart fixes them all.
 */
function checkDemoNames() {
  const name = databaseName(DATABASE_URL);
  const problems: string[] = [];
  if (!name.includes('demo')) {
    problems.push(
      `Refusing to drop database "${name}": the demo drops and recreates its database on every run, so ` +
        'DEMO_DATABASE_URL must name a database whose name contains "demo".',
    );
  }
  if (!QUEUE_PREFIX.includes('demo')) {
    problems.push(`Refusing to empty queues under "${QUEUE_PREFIX}": DEMO_QUEUE_PREFIX must contain "demo".`);
  }
  if (problems.length) throw new DemoError(problems.join('\n'));
}

/** Drops and recreates the demo database. */
async function resetDatabase() {
  try {
    await dropDatabase(DATABASE_URL);
    await ensureDatabase(DATABASE_URL);
  } catch (error) {
    throw new DemoError(
      `Could not reset the demo database at ${redactUrl(DATABASE_URL)}: ${(error as Error).message}\n` +
        'Is PostgreSQL running? Start it, or point DEMO_DATABASE_URL at a server that is.',
    );
  }
}

/** Empties the demo's BullMQ queues, so jobs of an earlier run's database do not reach this one. */
async function resetQueues() {
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  // ioredis reports the cause (ECONNREFUSED...) as an event and rejects with "Connection is closed".
  let cause: Error | undefined;
  redis.on('error', (error: Error) => (cause ??= error));
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${QUEUE_PREFIX}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } catch (error) {
    throw new DemoError(
      `Could not reach Redis at ${redactUrl(REDIS_URL)}: ${(cause ?? (error as Error)).message}\n` +
        'Is Redis running? Start it, or set REDIS_URL.',
    );
  } finally {
    redis.disconnect();
  }
}

/** Fails early when something already listens on the port (its /health would fool the wait below). */
async function ensurePortFree() {
  await new Promise<void>((done, fail) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        new DemoError(
          error.code === 'EADDRINUSE'
            ? `Port ${PORT} on ${HOST} is in use. Stop what runs there or set PORT (e.g. PORT=3055 npm run demo).`
            : `Cannot listen on ${HOST}:${PORT}: ${error.message}`,
        ),
      ),
    );
    server.listen(PORT, HOST, () => server.close(() => done()));
  });
}

/** Polls GET /health until it answers 200; explains what is down when it does not in time. */
async function waitForHealth(baseUrl: string) {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(3000) });
      const text = await response.text();
      if (response.status === 200) return;
      last = `HTTP ${response.status} ${text}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const down: string[] = [];
  if (/"postgres":"down"/.test(last)) down.push(`PostgreSQL (${redactUrl(DATABASE_URL)})`);
  if (/"redis":"down"/.test(last)) down.push(`Redis (${redactUrl(REDIS_URL)})`);
  throw new DemoError(
    `The broker was not healthy after ${HEALTH_TIMEOUT_MS / 1000} s (last answer: ${last}).\n` +
      (down.length
        ? `Down: ${down.join(' and ')}. Start ${down.length > 1 ? 'them' : 'it'} and run the demo again.`
        : `Check that PostgreSQL (${redactUrl(DATABASE_URL)}) and Redis (${redactUrl(REDIS_URL)}) are running.`) +
      `\nBroker output:\n${children[0]?.output.trim() || '(none)'}`,
  );
}

/** The table of API keys, one line per user. */
function keyTable(county: SeededCounty, operatorKey: string): string {
  const rows = [
    ['ROLE', 'AGENCY', 'USER', 'API KEY'],
    ['OPERATOR', '(platform: no agency)', 'bootstrap operator', operatorKey],
    ...county.users.map((u) => [u.role, u.agencyName, u.email, u.apiKey]),
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) => '  ' + r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]) : cell)).join('  '))
    .join('\n');
}

function printSummary(
  baseUrl: string,
  county: SeededCounty,
  operatorKey: string,
  seconds: number,
  linkageRunId: string | null,
) {
  const analyst = county.users.find((u) => u.handle === 'analyst:RESEARCH')!;
  const records = Object.values(county.datasets)
    .map((d) => `${d.slug} ${d.records}`)
    .join(', ');
  say();
  say(`Demo county seeded in ${seconds.toFixed(1)} s: ${county.county.people.length} people; ${records}.`);
  say('Agreements in force (there is no CBO → probation agreement: probation sees no program records):');
  for (const a of county.agreements) say(`  ${a.provider} → ${a.recipient}: ${a.title} (${a.dataset})`);
  say(
    `Awaiting the oversight board (sign in as the auditor to approve or decline it): ` +
      `${COUNTY_PROPOSAL_AWAITING_OVERSIGHT.provider} → ${COUNTY_PROPOSAL_AWAITING_OVERSIGHT.recipient}: ` +
      `${COUNTY_PROPOSAL_AWAITING_OVERSIGHT.title}.`,
  );
  say(
    `Retention: ${COUNTY_RETENTION.dataset} records are destroyed ${COUNTY_RETENTION.retentionDays} days after ` +
      `${COUNTY_RETENTION.retentionField} (the worker's daily job).`,
  );
  if (linkageRunId) {
    say(
      `Linkage run ${linkageRunId} started: personKey appears in the research office's rows when it succeeds ` +
        `(follow it in the admin UI as the operator, or with linkageRun(id)).`,
    );
  }
  say();
  say(`  Broker        ${baseUrl}`);
  say(`  Admin UI      ${baseUrl}/admin/     (sign in with a key below)`);
  say(
    `  Register      ${baseUrl}/register      (public: the agreements in force, for anyone; JSON at /api/register)`,
  );
  say(`  GraphQL       ${baseUrl}/graphql          (control plane; GraphiQL in a browser)`);
  say(
    `  Data plane    ${baseUrl}/data/graphql     (analysts; records within agreements; GraphiQL in a browser)`,
  );
  say(`  Health        ${baseUrl}/health`);
  say(`  Metrics       ${baseUrl}/metrics`);
  say(`  Database      ${redactUrl(DATABASE_URL)}  (recreated on every run)`);
  say();
  say('API keys (shown once; the demo recreates them on every run):');
  say(keyTable(county, operatorKey));
  say();
  say('Try:');
  say(
    `  curl -s ${baseUrl}/graphql -H 'Authorization: Bearer ${analyst.apiKey}' ` +
      `-H 'Content-Type: application/json' -d '{"query":"{ me { email role agency { name } } datasets { slug title provider { name } } }"}'`,
  );
  // Two agreements grant the research office this dataset for the purpose (rows, and counts only):
  // a request names the one it reads under.
  const rowsAgreement = county.agreements.find(
    (a) => a.title === 'Re-entry program outcomes for recidivism evaluation',
  )!.id;
  say(
    `  curl -s ${baseUrl}/data/graphql -H 'Authorization: Bearer ${analyst.apiKey}' ` +
      `-H 'Content-Type: application/json' -d '{"query":"{ reentry_participation(purpose: RECIDIVISM_EVALUATION, ` +
      `agreement: \\"${rowsAgreement}\\", first: 5) ` +
      `{ nodes { program completed dob_year last_name_hash } pageInfo { hasNextPage endCursor } } }"}'`,
  );
  say(
    `  curl -s ${baseUrl}/data/graphql -H 'Authorization: Bearer ${analyst.apiKey}' ` +
      `-H 'Content-Type: application/json' -d '{"query":"{ probation_supervision_aggregate(purpose: RECIDIVISM_EVALUATION, ` +
      `groupBy: [risk_level, start_date_year]) { groups { key count suppressed } } }"}'`,
  );
  say();
  say('Press Ctrl-C to stop the broker and the worker.');
}

async function main() {
  if (!Number.isInteger(PORT) || PORT < 1 || PORT > 65535)
    throw new DemoError(`PORT must be a port number, not ${process.env.PORT}`);
  if (!Number.isInteger(PEOPLE) || PEOPLE < 1) throw new DemoError('DEMO_PEOPLE must be a positive integer');
  const onSignal = (signal: NodeJS.Signals) => {
    say(`\n${signal}: stopping the broker and the worker...`);
    void shutdown(0);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Last resort if the demo itself crashes: do not leave the children running.
  process.once('exit', () => {
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL');
  });

  const displayHost =
    HOST === '0.0.0.0' || HOST === '::' ? '127.0.0.1' : HOST.includes(':') ? `[${HOST}]` : HOST;
  const baseUrl = `http://${displayHost}:${PORT}`;
  checkDemoNames();
  say(`Resetting ${redactUrl(DATABASE_URL)} and the "${QUEUE_PREFIX}" queues...`);
  await ensurePortFree();
  await resetDatabase();
  await resetQueues();

  const operatorKey = `demo_${randomBytes(24).toString('base64url')}`;
  const env = {
    PORT: String(PORT),
    HOST,
    DATABASE_URL,
    REDIS_URL,
    QUEUE_PREFIX,
    LOG_LEVEL: process.env.LOG_LEVEL || 'info',
  };
  say('Starting the broker and the worker...');
  startChild('broker', BROKER_MAIN, { ...env, BROKER_BOOTSTRAP_TOKEN: operatorKey });
  startChild('worker', WORKER_MAIN, env);
  await waitForHealth(baseUrl);

  say(`Seeding the county (${PEOPLE} people) through ${baseUrl}...`);
  const started = Date.now();
  const county = await seedCounty(httpBrokerClient(baseUrl), {
    operatorKey,
    seed: SEED,
    people: PEOPLE,
    log: (message) => say(`  ${message}`),
  });
  const seconds = (Date.now() - started) / 1000;
  // Link the county's people now rather than after the ingestion debounce, so personKey is soon there.
  let linkageRunId: string | null = null;
  try {
    const { startLinkage } = await httpBrokerClient(baseUrl).gql<{ startLinkage: { id: string } }>(
      operatorKey,
      'mutation { startLinkage { id } }',
    );
    linkageRunId = startLinkage.id;
  } catch (error) {
    say(`  (linkage could not be started: ${error instanceof Error ? error.message : String(error)})`);
  }
  // The README's examples read the keys and ids from here; `npm run audit:verify` the database.
  writeFileSync(DEMO_ENV_FILE, demoEnv(county, { baseUrl, databaseUrl: DATABASE_URL }), { mode: 0o600 });
  printSummary(baseUrl, county, operatorKey, seconds, linkageRunId);
  say(`Keys and ids are also in ./${DEMO_ENV_FILE} (for the README's examples: . ./${DEMO_ENV_FILE}).`);
  if (linkageRunId) await answerRecidivism(baseUrl, county, operatorKey, linkageRunId);
}

// -- Issue 13: the county's question, answered once linkage has run --

/**
 * Waits for the linkage run, then asks the county's question as the research office, with counts
 * only, and prints the query and its answer: per program, completers, those booked again within
 * 365 days of completing, and the rate.
 */
async function answerRecidivism(baseUrl: string, county: SeededCounty, operatorKey: string, runId: string) {
  const client = httpBrokerClient(baseUrl);
  const deadline = Date.now() + 15 * 60_000;
  let status = 'QUEUED';
  while (!stopping && Date.now() < deadline && (status === 'QUEUED' || status === 'RUNNING')) {
    await new Promise((r) => setTimeout(r, 2000));
    const { linkageRun } = await client.gql<{ linkageRun: { status: string } | null }>(
      operatorKey,
      'query($id: ID!) { linkageRun(id: $id) { status } }',
      { id: runId },
    );
    status = linkageRun?.status ?? 'FAILED';
  }
  if (status !== 'SUCCEEDED') {
    say(`The recidivism question waits for linkage (run ${runId}: ${status}).`);
    return;
  }
  const analyst = county.users.find((u) => u.handle === 'analyst:RESEARCH')!;
  const idOf = (title: string) => county.agreements.find((a) => a.title === title)!.id;
  const variables = {
    cohort: idOf(RECIDIVISM_COUNT_AGREEMENTS[0].title),
    outcome: idOf(RECIDIVISM_COUNT_AGREEMENTS[1].title),
  };
  const response = await fetch(`${baseUrl}/data/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${analyst.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query: RECIDIVISM_QUERY, variables }),
  });
  const body = (await response.json()) as {
    data: Parameters<typeof recidivismLines>[0] | null;
    errors?: unknown;
  };
  if (!body.data) {
    say(`The recidivism question was refused: ${JSON.stringify(body.errors)}`);
    return;
  }
  const answer = body.data;
  say();
  say("The county's question, as the research office asks it (counts only, no row of either agency):");
  say(`  variables: ${JSON.stringify(variables)}`);
  say(RECIDIVISM_QUERY.replace(/^/gm, '  '));
  say('  program                        completers  booked again within 365 days  rate');
  for (const line of recidivismLines(answer)) {
    const cell = (n: number | null) => (n === null ? 'below minimum' : String(n));
    say(
      `  ${line.program.padEnd(30)} ${cell(line.completers).padStart(10)}  ${cell(line.rebooked).padStart(28)}  ${
        line.rate === null ? '' : `${(100 * line.rate).toFixed(0)}%`
      }`,
    );
  }
  say('  (each count within ±2 of the truth: the cell-key perturbation, docs/disclosure-control.md)');
}

main().catch((error: unknown) => {
  if (stopping) return;
  process.stderr.write(
    `\n${error instanceof DemoError ? error.message : error instanceof Error ? error.stack : String(error)}\n`,
  );
  void shutdown(1);
});
