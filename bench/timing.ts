/**
 * `npm run bench:timing`: an attacker's review of the data plane's timing side channels.
 *
 * An analyst with a valid key under one agreement tries to learn from how LONG answers take (and
 * from their sizes and headers) what the agreement does not release: whether a record exists
 * outside its row filter, whether a subject withdrew consent, how many records a person or a HASH
 * value has outside the population, the size of a group an aggregate leaves out. For each pair of
 * requests that should be indistinguishable (same answer, or answers that say nothing of the
 * difference), the bench sends them interleaved in a random order, one client, one at a time,
 * BENCH_TIMING_SAMPLES each (default 1,000; a quarter as many for aggregates and for requests of
 * tens of ms or more), after a warm-up, and prints the medians, their difference, a two-sided
 * Mann–Whitney U test, U/(n1·n2) (the chance one request of the first kind is slower than one of
 * the second), and about how many requests of each kind an attacker would need to tell them apart
 * (bench/timing-stats.ts). Answers are compared too: bytes, or status, size and headers.
 *
 * The data: BENCH_TIMING_ROWS (default 100,000) bookings of two counties loaded through the REST
 * ingest, plus the targets of the pairs (records outside the row filter, withdrawn consents,
 * persons and names with records on both sides of the filter, small groups), consent and a linkage
 * run written in SQL. Two agreements release the dataset to the analyst's agency for one purpose:
 * ROWS (row filter county = NORTH, consent required, name as HASH, linkage) and AGGREGATE_ONLY (the
 * same population, minimum cell size 11). A second broker with a daily aggregate budget of 1 answers
 * the over-budget pair. See docs/disclosure-control.md ("Timing") and docs/benchmarks.md.
 *
 * BENCH_TIMING_PAIRS=name,name runs only those pairs (names as printed).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import {
  MAX_PERTURBED_FILTER_CONDITIONS,
  MAX_PERTURBED_FILTER_HASHES,
  perturbation,
  perturbationKey,
} from '@broker/policy';
import {
  BENCH_JUSTIFICATION,
  BROKER_MAIN,
  activateAgreement,
  databaseUrl,
  dropDatabase,
  freePort,
  mulberry32,
  post,
  stopChild,
  waitForBroker,
  withClient,
  benchParties,
} from './bench-support';
import { type Comparison, mannWhitney, requestsToDistinguish } from './timing-stats';

const ROWS = Number(process.env.BENCH_TIMING_ROWS ?? 100_000);
const SAMPLES = Number(process.env.BENCH_TIMING_SAMPLES ?? 1000);
// Aggregates, and requests with a heavy filter (whose planning alone takes tens of ms), read more:
// fewer samples.
const FEW_SAMPLES = Math.max(2, Math.round(SAMPLES / 4));
const ONLY = (process.env.BENCH_TIMING_PAIRS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const BROKER_DB = process.env.BENCH_TIMING_DB || 'broker_bench_timing';
const SLUG = 'bench_timing_bookings';
const TYPE = 'BenchTimingBookings';
const PURPOSE = 'RECIDIVISM_EVALUATION';
const ROOT = resolve(__dirname, '..', '..');
const DATA_DIR = resolve(ROOT, 'bench', '.data');
/** A pair is significant at this p-value (Bonferroni over about 20 pairs: 0.05 / 20). */
const ALPHA = 0.0025;

const FIELDS = [
  { name: 'booking_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
  { name: 'subject_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
  { name: 'name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
  { name: 'county', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
  { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER', identity: 'ZIP' },
  { name: 'offense', type: 'STRING', classification: 'SENSITIVE' },
  { name: 'age', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
  { name: 'booked_on', type: 'DATE', classification: 'NON_SENSITIVE' },
] as const;
const OFFENSES = ['THEFT', 'ASSAULT', 'DUI', 'DRUGS', 'FRAUD', 'BURGLARY', 'VANDALISM', 'ARSON'];
const SYLLABLES = [...'bcdfghjklmnprstvwz'].flatMap((c) => [`${c}a`, `${c}o`, `${c}i`, `${c}e`]);

// The targets. Keys are 8 characters, zips 5, so that answers about two targets have equal sizes.
const KEY_OUTSIDE = 'X0000001'; // county SOUTH: outside the row filter
const KEY_WITHDRAWN = 'X0000002'; // county NORTH, its subject withdrew consent
const KEY_NONE = 'X0000003'; // never stored
/** Names (HASH) and persons (personKey): one released record each, and this many outside the filter. */
const TARGETS = { alpha: 20, bravo: 0, charlie: 1, delta: 3000 } as const;
type Target = keyof typeof TARGETS;
const ZIP_OUTSIDE = '99001'; // 5,000 records, all SOUTH
const ZIP_SMALL = '99002'; // 10 records in the population: left out of every perturbed answer
const ZIP_NONE = '99000'; // no record
/** Zips of 11 records in the population each, one of which is drawn below 11 (left out). */
const BOUNDARY_ZIPS = Array.from({ length: 24 }, (_, i) => String(99100 + i));
/** A run of 20,000 keys outside the filter before one inside, and one inside at once. */
const GAP_KEYS = 20_000;

interface Setup {
  analystKey: string;
  datasetId: string;
  rowsAgreement: string;
  aggAgreement: string;
  operator: string;
}

interface Answer {
  status: number;
  body: string;
  headers: string;
  ms: number;
}

/** One pair of requests that should be indistinguishable. */
interface Pair {
  name: string;
  /** What an attacker would learn if it could tell them apart. */
  question: string;
  path: '/data/graphql' | '/data/export';
  a: string;
  b: string;
  /** Whether the two answers should be the same bytes (else: the same size and status). */
  sameAnswer: boolean;
  samples: number;
  /** Another broker to ask (the over-budget one). */
  port?: number;
  headers?: Record<string, string>;
}

interface Result {
  pair: Pair;
  stats: Comparison;
  answers: string;
}

async function main() {
  for (const [name, value] of Object.entries({ ROWS, SAMPLES })) {
    if (!Number.isInteger(value) || value < 2) throw new Error(`${name} must be an integer of at least 2`);
  }
  mkdirSync(DATA_DIR, { recursive: true });
  const began = performance.now();
  const load = () =>
    `${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${((performance.now() - began) / 1000).toFixed(0)} s into the run`;
  console.log(`${cpus().length} cores, load average ${load()}; node ${process.version}`);

  await dropDatabase(BROKER_DB);
  const token = `bench_${randomBytes(24).toString('base64url')}`;
  const port = await freePort();
  const unbounded = { AGGREGATE_DAILY_BUDGET: '1000000', AGGREGATE_AGREEMENT_DAILY_BUDGET: '1000000' };
  const broker = await startBroker(port, token, unbounded, 'timing-broker.log');
  const children: ChildProcess[] = [broker];
  const stopOnSignal = () => children.forEach((c) => c.kill('SIGKILL'));
  process.once('SIGINT', stopOnSignal);
  try {
    const setup = await prepare(port, token);
    console.log(`data ready; load ${load()}`);
    const pairs = await definePairs(port, setup);
    // The over-budget pair: a second broker on the same database whose daily budget is 1, spent.
    const overPort = await freePort();
    const over = await startBroker(
      overPort,
      token,
      { ...unbounded, AGGREGATE_DAILY_BUDGET: '1' },
      'timing-broker-budget.log',
    );
    children.push(over);
    const heavyAgg = (zip: string) => aggregateBody(setup, { zip: { eq: zip }, or: heaviestAllowed() });
    pairs.push({
      name: 'agg-over-budget',
      question:
        'past its budget, with the heaviest filter accepted: the size of a small group (statement run?)',
      path: '/data/graphql',
      a: heavyAgg(ZIP_SMALL),
      b: heavyAgg(ZIP_NONE),
      sameAnswer: true,
      samples: FEW_SAMPLES,
      port: overPort,
    });

    const chosen = ONLY.length ? pairs.filter((p) => ONLY.includes(p.name)) : pairs;
    if (ONLY.length && chosen.length !== ONLY.length) {
      throw new Error(`unknown pairs: ${ONLY.filter((n) => !pairs.some((p) => p.name === n)).join(', ')}`);
    }
    const results: Result[] = [];
    for (const pair of chosen) {
      console.log(`${pair.name}: ${pair.samples} each, interleaved; load ${load()}`);
      results.push(await measure(pair, pair.port ?? port, setup.analystKey));
    }
    report(results);
    console.log(`load average ${load()}`);
  } finally {
    process.off('SIGINT', stopOnSignal);
    for (const child of children.reverse()) await stopChild(child);
    if (!process.env.BENCH_KEEP_DB) await dropDatabase(BROKER_DB);
  }
}

// ---------------------------------------------------------------------------------------------
// The pairs.

/**
 * The heaviest filter a perturbed count may hold beside `zip: {eq: …}` (MAX_PERTURBED_FILTER_CONDITIONS
 * conditions, MAX_PERTURBED_FILTER_HASHES of them on a HASH name), matching nothing.
 */
function heaviestAllowed(): Record<string, unknown>[] {
  return [
    ...heavyHashOr().slice(0, MAX_PERTURBED_FILTER_HASHES),
    ...Array.from({ length: MAX_PERTURBED_FILTER_CONDITIONS - MAX_PERTURBED_FILTER_HASHES - 1 }, (_, i) => ({
      offense: { eq: `NONE${i}` },
    })),
  ];
}

/** An OR of 200 HASH comparisons that match nothing: 200 HMACs for every row that reaches it. */
function heavyHashOr(): Record<string, unknown>[] {
  return Array.from({ length: 200 }, (_, i) => ({ name_hash: { eq: i.toString(16).padStart(64, '0') } }));
}

const NODE_FIELDS = 'booking_id name_hash zip offense age_band booked_on county';

function pageBody(setup: Setup, where: unknown, first = 10, extra = '', fields = NODE_FIELDS): string {
  return JSON.stringify({
    query: `query($w: ${TYPE}Where) { ${SLUG}(purpose: ${PURPOSE}, agreement: "${setup.rowsAgreement}", where: $w,
      first: ${first}${extra}) { nodes { ${fields} } pageInfo { hasNextPage endCursor } } }`,
    variables: { w: where },
  });
}

function aggregateBody(setup: Setup, where: unknown): string {
  return JSON.stringify({
    query: `query($w: ${TYPE}Where) { ${SLUG}_aggregate(purpose: ${PURPOSE}, agreement: "${setup.aggAgreement}",
      where: $w, groupBy: [offense]) { groups { key count suppressed } noise } }`,
    variables: { w: where },
  });
}

/** Reads, as the analyst, what the pairs need: the released hashes and personKeys of the targets. */
async function definePairs(port: number, setup: Setup): Promise<Pair[]> {
  const headers = analystHeaders(setup.analystKey);
  const ask = async (body: string) => {
    const res = await send(port, '/data/graphql', headers, body);
    const parsed = JSON.parse(res.body) as { data: Record<string, any> | null; errors?: unknown };
    if (!parsed.data) throw new Error(`the analyst was refused: ${res.body.slice(0, 500)}`);
    return parsed.data;
  };
  const released: Record<Target, { hash: string; personKey: string }> = {} as never;
  for (const target of Object.keys(TARGETS) as Target[]) {
    const data = await ask(
      pageBody(setup, { booking_id: { eq: releasedKey(target) } }, 10, '', `${NODE_FIELDS} personKey`),
    );
    const [node] = data[SLUG].nodes as { name_hash: string; personKey: string }[];
    if (!node?.personKey) throw new Error(`the released record of ${target} was not found, or not linked`);
    released[target] = { hash: node.name_hash, personKey: node.personKey };
  }
  // The lookup tables of HASH names and of personKeys are built after the first filter on them.
  await ask(pageBody(setup, { name_hash: { eq: released.bravo.hash } }));
  await ask(pageBody(setup, { personKey: { eq: released.bravo.personKey } }));
  await waitFor('the lookup tables of name_hash and personKey', async () =>
    withClient(BROKER_DB, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM hash_key_scope WHERE serves)::int
              + (SELECT count(*) FROM person_key_scope)::int AS n`,
      );
      return rows[0].n >= 2;
    }),
  );
  // This broker learns that its table serves at its next check (HASH_LOOKUP_CHECK_MS after the first).
  await waitFor('the broker reading name_hash through its table', async () => {
    await ask(pageBody(setup, { name_hash: { eq: released.bravo.hash } }));
    return withClient(BROKER_DB, async (c) => {
      const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM hash_key`);
      return rows[0].n > 0;
    });
  });
  const boundary = await boundaryZip(port, setup);
  console.log(`boundary zip ${boundary.zip}: 11 records, cell key drawn ${boundary.draw}: left out`);

  const hashPage = (t: Target) => pageBody(setup, { name_hash: { eq: released[t].hash } });
  const personPage = (t: Target) => pageBody(setup, { personKey: { eq: released[t].personKey } });
  const keyPage = (key: string) => pageBody(setup, { booking_id: { eq: key } });
  const heavyKey = (key: string) => pageBody(setup, { booking_id: { eq: key }, or: heavyHashOr() });
  const outsideKeys = Array.from({ length: 500 }, (_, i) => gapKey(i));
  const noKeys = Array.from({ length: 500 }, (_, i) => `N${String(i).padStart(7, '0')}`);
  const agg = (where: unknown) => aggregateBody(setup, where);
  const exportBody = (t: Target) =>
    JSON.stringify({
      query: `{ ${SLUG}(purpose: ${PURPOSE}, agreement: "${setup.rowsAgreement}",
        where: { name_hash: { eq: "${released[t].hash}" } }) { nodes { ${NODE_FIELDS} } } }`,
    });
  const page = (p: Omit<Pair, 'path' | 'samples'>): Pair => ({
    ...p,
    path: '/data/graphql',
    samples: SAMPLES,
  });
  const aggregate = (p: Omit<Pair, 'path' | 'samples'>): Pair => ({
    ...p,
    path: '/data/graphql',
    samples: FEW_SAMPLES,
  });
  const heavy = (p: Omit<Pair, 'path' | 'samples'>): Pair => ({
    ...p,
    path: '/data/graphql',
    samples: FEW_SAMPLES,
  });
  return [
    page({
      name: 'key-outside',
      question: 'a record exists outside the row filter',
      a: keyPage(KEY_OUTSIDE),
      b: keyPage(KEY_NONE),
      sameAnswer: true,
    }),
    page({
      name: 'key-withdrawn',
      question: 'a record in the row filter whose subject withdrew consent exists',
      a: keyPage(KEY_WITHDRAWN),
      b: keyPage(KEY_NONE),
      sameAnswer: true,
    }),
    heavy({
      name: 'key-withdrawn-heavy',
      question: 'the same, amplified: 200 HMACs per row that reaches the filter',
      a: heavyKey(KEY_WITHDRAWN),
      b: heavyKey(KEY_NONE),
      sameAnswer: true,
    }),
    heavy({
      name: 'key-outside-heavy',
      question: 'a record outside the row filter exists, amplified the same way',
      a: heavyKey(KEY_OUTSIDE),
      b: heavyKey(KEY_NONE),
      sameAnswer: true,
    }),
    heavy({
      name: 'keys-outside-500',
      question: 'how many of 500 keys exist outside the row filter (all vs none)',
      a: pageBody(setup, { booking_id: { in: outsideKeys } }),
      b: pageBody(setup, { booking_id: { in: noKeys } }),
      sameAnswer: true,
    }),
    page({
      name: 'refused-name',
      question: 'a refused filter (name, not released) on a stored value vs an absent one',
      a: pageBody(setup, { name: { eq: targetName('delta') } }),
      // Of the same length: the refusal quotes the value asked.
      b: pageBody(setup, { name: { eq: 'Nobody Atall' } }),
      sameAnswer: false,
    }),
    page({
      name: 'hash-outside-1',
      question: 'a released name (HASH) has 1 record outside the filter (vs 0)',
      a: hashPage('charlie'),
      b: hashPage('bravo'),
      sameAnswer: false,
    }),
    page({
      name: 'hash-outside-20',
      question: 'a released name (HASH) has 20 records outside the filter (vs 0)',
      a: hashPage('alpha'),
      b: hashPage('bravo'),
      sameAnswer: false,
    }),
    heavy({
      name: 'hash-outside-3000',
      question: 'a released name (HASH) has 3,000 records outside the filter (vs 0)',
      a: hashPage('delta'),
      b: hashPage('bravo'),
      sameAnswer: false,
    }),
    page({
      name: 'person-outside-1',
      question: 'a person (personKey) has 1 record outside the filter (vs 0)',
      a: personPage('charlie'),
      b: personPage('bravo'),
      sameAnswer: false,
    }),
    page({
      name: 'person-outside-20',
      question: 'a person (personKey) has 20 records outside the filter (vs 0)',
      a: personPage('alpha'),
      b: personPage('bravo'),
      sameAnswer: false,
    }),
    page({
      name: 'keyset-gap',
      question: '20,000 records outside the filter between two keys (vs none)',
      a: pageBody(setup, { booking_id: { gte: 'G1' } }, 1, ', orderBy: [{ field: booking_id }]'),
      b: pageBody(setup, { booking_id: { gte: 'G2' } }, 1, ', orderBy: [{ field: booking_id }]'),
      sameAnswer: false,
    }),
    {
      name: 'export-hash-outside-20',
      question: 'the same as hash-outside-20, through POST /data/export',
      path: '/data/export',
      a: exportBody('alpha'),
      b: exportBody('bravo'),
      sameAnswer: false,
      samples: Math.max(2, Math.round(SAMPLES / 2)),
      headers: { accept: 'application/x-ndjson' },
    },
    aggregate({
      name: 'agg-outside',
      question: 'a zip has 5,000 records outside the row filter (vs none)',
      a: agg({ zip: { eq: ZIP_OUTSIDE } }),
      b: agg({ zip: { eq: ZIP_NONE } }),
      sameAnswer: true,
    }),
    aggregate({
      name: 'agg-small-group',
      question: 'a group left out holds 10 records (vs none)',
      a: agg({ zip: { eq: ZIP_SMALL } }),
      b: agg({ zip: { eq: ZIP_NONE } }),
      sameAnswer: true,
    }),
    aggregate({
      name: 'agg-small-group-heavy',
      question: 'the same, amplified: 200 HMACs per row that reaches the filter',
      a: agg({ zip: { eq: ZIP_SMALL }, or: heavyHashOr() }),
      b: agg({ zip: { eq: ZIP_NONE }, or: heavyHashOr() }),
      sameAnswer: true,
    }),
    aggregate({
      name: 'agg-small-group-max',
      question: 'the same, with the heaviest filter a perturbed count accepts (2 HMACs, 100 conditions)',
      a: agg({ zip: { eq: ZIP_SMALL }, or: heaviestAllowed() }),
      b: agg({ zip: { eq: ZIP_NONE }, or: heaviestAllowed() }),
      sameAnswer: true,
    }),
    aggregate({
      name: 'agg-boundary',
      question: 'a group left out holds 11 records drawn below the minimum (vs 10): the threshold oracle',
      a: agg({ zip: { eq: boundary.zip } }),
      b: agg({ zip: { eq: ZIP_SMALL } }),
      sameAnswer: true,
    }),
  ];
}

/**
 * One of {@link BOUNDARY_ZIPS} whose group of 11 is left out of a perturbed answer (drawn −1 or
 * −2): its cell key summed from its records' row ids, its draw by the deployment's key, as the
 * broker's statement does (cell-key.ts); checked against the broker's answer.
 */
async function boundaryZip(port: number, setup: Setup): Promise<{ zip: string; draw: number }> {
  const { keys, secret } = await withClient(BROKER_DB, async (c) => {
    const { rows } = await c.query<{ zip: string; n: number; ck: string }>(
      `SELECT zip, count(*)::int AS n, (sum((_rid >> 16) & 2147483647) % 2147483648)::text AS ck
         FROM records.${SLUG} WHERE zip = ANY ($1) AND county = 'NORTH' GROUP BY zip ORDER BY zip`,
      [BOUNDARY_ZIPS],
    );
    const [{ cursor_key }] = (
      await c.query<{ cursor_key: Buffer }>(`SELECT cursor_key FROM data_plane_secret`)
    ).rows;
    return { keys: rows, secret: cursor_key };
  });
  const key = perturbationKey(secret);
  const found = keys.find((k) => k.n === 11 && perturbation(k.ck, 11, key) < 0);
  if (!found) throw new Error('no boundary zip drawn below the minimum; run again (new row ids)');
  const draw = perturbation(found.ck, 11, key);
  // The broker agrees: the group is left out, and one of 11 drawn 0 or more is listed.
  const listedZip = keys.find((k) => k.n === 11 && perturbation(k.ck, 11, key) >= 0);
  const groupsOf = async (zip: string) => {
    const res = await send(
      port,
      '/data/graphql',
      analystHeaders(setup.analystKey),
      aggregateBody(setup, { zip: { eq: zip } }),
    );
    return (JSON.parse(res.body) as { data: Record<string, { groups: unknown[] }> }).data[`${SLUG}_aggregate`]
      .groups.length;
  };
  if ((await groupsOf(found.zip)) !== 0 || (listedZip && (await groupsOf(listedZip.zip)) !== 1)) {
    throw new Error('the broker lists the boundary groups otherwise than their draws say');
  }
  return { zip: found.zip, draw };
}

// ---------------------------------------------------------------------------------------------
// Measuring.

async function measure(pair: Pair, port: number, analystKey: string): Promise<Result> {
  const headers = { ...analystHeaders(analystKey), ...(pair.headers ?? {}) };
  const random = mulberry32(0x7131 + pair.name.length);
  const times: [number[], number[]] = [[], []];
  const shapes: [Set<string>, Set<string>] = [new Set(), new Set()];
  let same = true;
  let first: [Answer, Answer] | null = null;
  const warmUp = Math.max(5, Math.round(pair.samples / 20));
  for (let i = 0; i < warmUp + pair.samples; i++) {
    const order = random() < 0.5 ? [0, 1] : [1, 0];
    const answers: Answer[] = [];
    for (const side of order) {
      const answer = await send(port, pair.path, headers, side ? pair.b : pair.a);
      answers[side] = answer;
      if (i >= warmUp) times[side].push(answer.ms);
      shapes[side].add(`${answer.status} ${answer.body.length} B ${answer.headers}`);
    }
    first ??= [answers[0], answers[1]];
    if (answers[0].body !== answers[1].body) same = false;
  }
  const [a, b] = first!;
  for (const answer of [a, b]) {
    if (answer.status >= 500) throw new Error(`${pair.name}: answered ${answer.status}: ${answer.body}`);
  }
  if (pair.sameAnswer && !same) {
    throw new Error(
      `${pair.name}: the two answers differ:\n${a.body.slice(0, 400)}\n${b.body.slice(0, 400)}`,
    );
  }
  const shapeText = (s: Set<string>) => [...s].join(' | ');
  const sizes =
    shapes[0].size === 1 && shapes[1].size === 1 && shapeText(shapes[0]) === shapeText(shapes[1])
      ? 'same status, size and headers'
      : `a: ${shapeText(shapes[0])}; b: ${shapeText(shapes[1])}`;
  const answers = pair.sameAnswer ? `same bytes (${a.status}, ${a.body.length} B)` : sizes;
  console.log(`  a: ${a.body.slice(0, 160)}`);
  if (a.body !== b.body) console.log(`  b: ${b.body.slice(0, 160)}`);
  return { pair, stats: mannWhitney(times[0], times[1]), answers };
}

function report(results: Result[]) {
  console.log('');
  console.log(
    `${'pair'.padEnd(24)}${'n'.padStart(6)}${'median a'.padStart(10)}${'median b'.padStart(10)}` +
      `${'a − b'.padStart(9)}${'U/n1n2'.padStart(8)}${'p'.padStart(10)}${'req/side'.padStart(10)}  verdict`,
  );
  for (const { pair, stats } of results) {
    const significant = stats.p < ALPHA;
    const needed = requestsToDistinguish(stats.auc);
    console.log(
      pair.name.padEnd(24) +
        String(stats.n[0]).padStart(6) +
        stats.medians[0].toFixed(3).padStart(10) +
        stats.medians[1].toFixed(3).padStart(10) +
        `${stats.difference >= 0 ? '+' : ''}${stats.difference.toFixed(3)}`.padStart(9) +
        stats.auc.toFixed(3).padStart(8) +
        (stats.p < 1e-6 ? '<1e-6' : stats.p.toPrecision(2)).padStart(10) +
        (Number.isFinite(needed) ? needed.toLocaleString('en-US') : '∞').padStart(10) +
        `  ${significant ? 'DISTINGUISHABLE' : 'not distinguished'}`,
    );
  }
  console.log('');
  console.log(
    `times in ms, client side, one request at a time; p: two-sided Mann–Whitney U; significant below ` +
      `${ALPHA} (0.05 over 20 pairs); req/side: requests of each kind to tell them apart (5% false alarm, 95% power)`,
  );
  for (const { pair, answers } of results) console.log(`${pair.name}: ${pair.question}; answers: ${answers}`);
}

// ---------------------------------------------------------------------------------------------
// The data, through the broker's public API (and consent and linkage in SQL, as the query bench's
// linked count writes its linkage).

/** The key of the released record of a target. */
function releasedKey(target: Target): string {
  return `T${target[0].toUpperCase()}000000`;
}

function targetName(target: Target): string {
  return `Target ${target[0].toUpperCase()}${target.slice(1)}`;
}

/** The i-th key of the run of keys outside the filter before `G1999999`. */
function gapKey(i: number): string {
  return `G1${String(i).padStart(6, '0')}`;
}

async function prepare(port: number, operator: string): Promise<Setup> {
  const { g, provider, recipient, providerSteward, recipientSteward, analystKey, auditor } =
    await benchParties(port, operator, PURPOSE, 'Bench sheriff');
  const datasetId = (
    await g(providerSteward, `mutation($i: RegisterDatasetInput!) { registerDataset(input: $i) { id } }`, {
      i: {
        slug: SLUG,
        title: 'Timing benchmark bookings',
        keyField: 'booking_id',
        subjectField: 'subject_id',
        fields: FIELDS,
        // As a steward would for analysts who filter by zip.
        indexes: [['zip']],
      },
    })
  ).registerDataset.id as string;

  const csv = generateCsv();
  const started = performance.now();
  const res = await post(
    port,
    `/api/datasets/${datasetId}/records`,
    { authorization: `Bearer ${providerSteward}`, 'content-type': 'text/csv' },
    csv.text,
  );
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 1000)}`);
  const inserted = (JSON.parse(res.body) as { inserted: number }).inserted;
  if (inserted !== csv.rows) throw new Error(`ingest inserted ${inserted} of ${csv.rows} rows`);
  console.log(
    `loaded ${csv.rows.toLocaleString('en-US')} rows through POST /api/datasets/{id}/records in ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  await withClient(BROKER_DB, async (c) => {
    const { rows } = await c.query<{ id: string }>(`SELECT id FROM app_user WHERE role = 'STEWARD' LIMIT 1`);
    // Consent for the purpose: granted for every subject but those of the records whose key says
    // otherwise (W…: withdrawn, U…: never recorded) and the target withdrawn.
    await c.query(
      `WITH subjects AS (
         SELECT subject_id, NOT (booking_id LIKE 'W%' OR booking_id = $4) AS granted
           FROM records.${SLUG} WHERE booking_id NOT LIKE 'U%'),
       events AS (
         INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
         SELECT $1, subject_id, $2, granted, $3 FROM subjects RETURNING id, subject_id, granted)
       INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id)
       SELECT $1, $2, subject_id, granted, id FROM events`,
      [datasetId, PURPOSE, rows[0].id, KEY_WITHDRAWN],
    );
    // One linkage run in force: a person per record, but one person for all records of each target.
    const run = (
      await c.query<{ id: string }>(
        `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
      )
    ).rows[0].id;
    await c.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1::uuid, $2::uuid, booking_id,
              CASE WHEN name LIKE 'Target %' THEN 10000000 + ascii(substr(name, 8, 1))
                   ELSE row_number() OVER (ORDER BY booking_id) END
         FROM records.${SLUG}`,
      [run, datasetId],
    );
    await c.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run]);
    await c.query(`VACUUM ANALYZE records.${SLUG}`);
    await c.query(`VACUUM ANALYZE consent_current`);
    await c.query(`VACUUM ANALYZE linkage_person`);
    await c.query(`CHECKPOINT`);
  });

  const parties = { provider: providerSteward, recipient: recipientSteward, auditor };
  const common = {
    providerAgencyId: provider,
    recipientAgencyId: recipient,
    purposes: [PURPOSE],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
  };
  const field = (name: string, transform = 'RAW') => ({
    name,
    transform,
    justification: BENCH_JUSTIFICATION,
  });
  const rowsAgreement = await activateAgreement(port, parties, {
    ...common,
    title: 'Bench bookings, rows',
    grants: [
      {
        datasetId,
        rowFilter: { county: { $eq: 'NORTH' } },
        requireConsent: true,
        linkage: true,
        fields: [
          field('booking_id'),
          field('name', 'HASH'),
          field('county'),
          field('zip'),
          field('offense'),
          field('age', 'GENERALIZE'),
          field('booked_on'),
        ],
      },
    ],
  });
  const aggAgreement = await activateAgreement(port, parties, {
    ...common,
    title: 'Bench bookings, counts',
    grants: [
      {
        datasetId,
        access: 'AGGREGATE_ONLY',
        rowFilter: { county: { $eq: 'NORTH' } },
        requireConsent: true,
        minCellSize: 11,
        fields: [
          field('name', 'HASH'),
          field('county'),
          field('zip'),
          field('offense'),
          field('age', 'GENERALIZE'),
        ],
      },
    ],
  });
  // The row filter's index is built in the background once the agreement is in force.
  await waitFor('the index of the row filter', () =>
    withClient(BROKER_DB, async (c) => {
      const { rows } = await c.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'records' AND tablename = $1
            AND indexdef LIKE '%(county%'`,
        [SLUG],
      );
      return rows[0].n > 0;
    }),
  );
  await withClient(BROKER_DB, (c) => c.query(`ANALYZE records.${SLUG}`));
  return { analystKey, datasetId, rowsAgreement, aggAgreement, operator };
}

/**
 * The bookings, seeded: ROWS generic ones of two counties (about 3% of NORTH's subjects withdrew
 * consent, 2% never gave it), and the targets, each kept apart by its key, name or zip.
 */
function generateCsv(): { text: string; rows: number } {
  const random = mulberry32(20261201);
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)];
  const pad = (n: number) => String(n).padStart(2, '0');
  const lines = [FIELDS.map((f) => f.name).join(',')];
  const row = (key: string, name: string, county: string, zip: string, offense = 'THEFT', age = 34) =>
    lines.push(`${key},S-${key},${name},${county},${zip},${offense},${age},2024-03-15`);
  for (let i = 0; i < ROWS; i++) {
    const r = random();
    // B: consent granted; W: withdrawn; U: never recorded (the key's first letter, 8 characters).
    const prefix = r < 0.03 ? 'W' : r < 0.05 ? 'U' : 'B';
    const key = `${prefix}${String(i).padStart(7, '0')}`;
    const name = `${pick(SYLLABLES)}${pick(SYLLABLES)}${pick(SYLLABLES)}`;
    const county = random() < 0.5 ? 'NORTH' : 'SOUTH';
    const zip = String(10000 + Math.floor(random() * 100));
    const age = 18 + Math.floor(60 * random());
    const day = `2024-${pad(1 + Math.floor(12 * random()))}-${pad(1 + Math.floor(28 * random()))}`;
    lines.push(`${key},S${i},${name},${county},${zip},${pick(OFFENSES)},${age},${day}`);
  }
  row(KEY_OUTSIDE, 'Kept Apart', 'SOUTH', '20000');
  row(KEY_WITHDRAWN, 'Kept Apart', 'NORTH', '20000');
  for (const [target, outside] of Object.entries(TARGETS) as [Target, number][]) {
    row(releasedKey(target), targetName(target), 'NORTH', '20001');
    for (let i = 1; i <= outside; i++) {
      row(`T${target[0].toUpperCase()}${String(i).padStart(6, '0')}`, targetName(target), 'SOUTH', '20001');
    }
  }
  for (let i = 0; i < 5000; i++) row(`Z${String(i).padStart(7, '0')}`, 'Zip Outside', 'SOUTH', ZIP_OUTSIDE);
  for (let i = 0; i < 10; i++) row(`Y${String(i).padStart(7, '0')}`, 'Zip Small', 'NORTH', ZIP_SMALL);
  BOUNDARY_ZIPS.forEach((zip, z) => {
    for (let i = 0; i < 11; i++) row(`V${String(z * 100 + i).padStart(7, '0')}`, 'Zip Edge', 'NORTH', zip);
  });
  for (let i = 0; i < GAP_KEYS; i++) row(gapKey(i), 'Gap Outside', 'SOUTH', '20002');
  row('G1999999', 'Gap Inside', 'NORTH', '20002');
  row('G2000000', 'Gap Inside', 'NORTH', '20002');
  return { text: lines.join('\n') + '\n', rows: lines.length - 1 };
}

// ---------------------------------------------------------------------------------------------
// Processes and HTTP.

function analystHeaders(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
}

async function waitFor(what: string, done: () => Promise<boolean>, seconds = 120) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** Headers that differ between any two answers (a date), left out when answers are compared. */
const VARYING_HEADERS = new Set(['date', 'content-length', 'keep-alive', 'connection']);

function send(port: number, path: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const ms = performance.now() - started;
        const kept = Object.entries(res.headers)
          .filter(([name]) => !VARYING_HEADERS.has(name))
          .map(([name, value]) => `${name}=${String(value)}`)
          .sort()
          .join(';');
        resolvePromise({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: kept,
          ms,
        });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function startBroker(
  port: number,
  token: string,
  extraEnv: Record<string, string>,
  logName: string,
): Promise<ChildProcess> {
  const logPath = resolve(DATA_DIR, logName);
  const log = openSync(logPath, 'w');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl(BROKER_DB),
    BROKER_BOOTSTRAP_TOKEN: token,
    QUEUE_PREFIX: 'bench',
    ...extraEnv,
  };
  if (process.env.BENCH_LOG_LEVEL) env.LOG_LEVEL = process.env.BENCH_LOG_LEVEL;
  else delete env.LOG_LEVEL;
  const child = spawn(process.execPath, [BROKER_MAIN], { env, stdio: ['ignore', log, log] });
  closeSync(log);
  return waitForBroker(child, port, token, logPath);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:timing failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
