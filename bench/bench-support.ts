/** What the benchmarks share: databases, processes and HTTP on loopback. */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';

/** The PostgreSQL server the benchmarks use (`BENCH_PG_SERVER`). */
export const SERVER_URL = process.env.BENCH_PG_SERVER ?? 'postgres://postgres@127.0.0.1:5432';
/** The built broker, beside the built benchmark. */
export const BROKER_MAIN = resolve(__dirname, '..', 'apps', 'broker', 'src', 'main.js');

/** The URL of a database on the benchmark server. */
export function databaseUrl(name: string): string {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs `run` on a fresh connection to `database`, closing it after. */
export async function withClient<T>(database: string, run: (client: Client) => Promise<T>): Promise<T> {
  // Dates and times as text as the broker's readers write them (a cursor's position, for one).
  const client = new Client({ connectionString: databaseUrl(database), options: '-c DateStyle=ISO' });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Drops a database, closing its sessions. */
export async function dropDatabase(name: string) {
  await withClient('postgres', (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** A seeded pseudo-random generator, so generated data is the same bytes on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** User and system CPU time of a live process in seconds (at Linux's 100 ticks a second), or null. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** A TCP port free on loopback now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** POSTs a string or a stream (never held in memory) to a loopback port. */
export function post(
  port: number,
  path: string,
  headers: Record<string, string | number>,
  body: NodeJS.ReadableStream | string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (typeof body === 'string') req.end(body);
    else pipeline(body, req).catch(reject);
  });
}

/** A control-plane GraphQL request that fails loudly on any error. */
/** The broker's `GET /metrics` (Prometheus's text format). */
export function scrapeMetrics(port: number): Promise<string> {
  return new Promise<string>((done, fail) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done(body));
    })
      .on('error', fail)
      .end();
  });
}

export async function gql<T>(
  port: number,
  key: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const res = await post(
    port,
    '/graphql',
    { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    JSON.stringify({ query, variables }),
  );
  const parsed = JSON.parse(res.body) as { data?: T; errors?: { message: string }[] };
  if (res.status !== 200 || parsed.errors?.length || !parsed.data) {
    throw new Error(`GraphQL failed (${res.status}): ${res.body.slice(0, 500)}`);
  }
  return parsed.data;
}

/** Waits up to 60 s for a spawned broker to answer `me` with the operator's key. */
export async function waitForBroker(child: ChildProcess, port: number, token: string, logPath: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the broker exited with ${child.exitCode}; see ${logPath}`);
    try {
      await gql(port, token, '{ me { id } }');
      return child;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the broker did not answer within 60 s: ${(error as Error).message}`, {
          cause: error,
        });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Stops a child process: SIGTERM, then SIGKILL after 10 s. */
export async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** What a bench's agreements say of their community benefit and of each field: the broker requires both. */
export const BENCH_BENEFIT = 'Benchmark: measures what the broker costs, on generated data of nobody.';
export const BENCH_JUSTIFICATION = 'Benchmark: every field, to measure the cost of each transform.';

/**
 * Proposes an agreement as the provider's steward, stating the community benefit every bench states,
 * and brings it into force: the recipient's steward approves it, then the oversight board where it
 * needs oversight (one that does not is in force after the steward's approval). Returns its id;
 * throws unless it is ACTIVE.
 */
export async function activateAgreement(
  port: number,
  keys: { provider: string; recipient: string; auditor: string },
  input: Record<string, unknown> & { title: string },
): Promise<string> {
  const proposed = await gql<{ proposeAgreement: { id: string } }>(
    port,
    keys.provider,
    `mutation($i: AgreementInput!) { proposeAgreement(input: $i) { id } }`,
    { i: { communityBenefit: BENCH_BENEFIT, ...input } },
  );
  const id = proposed.proposeAgreement.id;
  const approve = async (key: string) =>
    (
      await gql<{ approveAgreement: { status: string } }>(
        port,
        key,
        `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { status } }`,
        { id },
      )
    ).approveAgreement.status;
  let status = await approve(keys.recipient);
  if (status !== 'ACTIVE') status = await approve(keys.auditor);
  if (status !== 'ACTIVE') throw new Error(`the agreement "${input.title}" is ${status}, not ACTIVE`);
  return id;
}

/**
 * `text` (a plan, a statement) with every bytea literal of 32 bytes zeroed: PostgreSQL prints an
 * agreement's HMAC key into the plan of a statement that hashes, and no key is written out.
 */
export function withoutKeys(text: string): string {
  return text.replace(/'\\x[0-9a-f]{64}'::bytea/g, `'\\x${'0'.repeat(64)}'::bytea`);
}

/** The median of some numbers (the mean of the middle two when there are an even number). */
export function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * A bench's GraphQL calls on the broker at `port` (`g`), and its accounts: `agency` creates one as
 * the operator; `user` creates a user of an agency. The operator invites each agency's steward
 * (rotating the invitation, as its owner would); a steward (`creator`) creates the agency's
 * analysts, whose keys work at once.
 */
export function benchAccounts(port: number, operator: string) {
  const g = <T = any>(key: string, query: string, variables?: Record<string, unknown>) =>
    gql<T>(port, key, query, variables);
  const agency = async (name: string, kind = 'benchmark') =>
    (
      await g(operator, `mutation($i: CreateAgencyInput!) { createAgency(input: $i) { id } }`, {
        i: { name, kind },
      })
    ).createAgency.id as string;
  const user = async (agencyId: string, role: string, creator = operator) => {
    const key = (
      await g(creator, `mutation($i: CreateUserInput!) { createUser(input: $i) { apiKey } }`, {
        i: { agencyId, role, email: `${role.toLowerCase()}-${randomBytes(4).toString('hex')}@bench.example` },
      })
    ).createUser.apiKey as string;
    if (creator !== operator) return key;
    return (await g(key, `mutation { rotateApiKey { apiKey } }`)).rotateApiKey.apiKey as string;
  };
  return { g, agency, user };
}

/**
 * The parties every data-plane bench starts from: a provider and a recipient agency (named
 * `providerName` and "Bench research office"), `purpose` defined, a steward of each, an analyst of
 * the recipient (created by its steward) and an oversight board's AUDITOR.
 */
export async function benchParties(port: number, operator: string, purpose: string, providerName: string) {
  const accounts = benchAccounts(port, operator);
  const { g, agency, user } = accounts;
  const provider = await agency(providerName);
  const recipient = await agency('Bench research office');
  await g(
    operator,
    `mutation { definePurpose(input: { code: "${purpose}", description: "bench" }) { code } }`,
  );
  const providerSteward = await user(provider, 'STEWARD');
  const recipientSteward = await user(recipient, 'STEWARD');
  const analystKey = await user(recipient, 'ANALYST', recipientSteward);
  const auditor = await user(await agency('Bench oversight board', 'oversight'), 'AUDITOR');
  return { ...accounts, provider, recipient, providerSteward, recipientSteward, analystKey, auditor };
}
