/**
 * `npm run bench:linkage`: record linkage end to end over BENCH_RECORDS (default 1,000,000) records
 * of the generated county across its four datasets. The records are uploaded through the broker's
 * REST ingest route; then `startLinkage` is timed until the run succeeds, executed by BENCH_WORKERS
 * (default 2) worker processes. Prints the wall time, candidate pairs scored per second per core,
 * the workers' peak memory, and pairwise precision, recall and F1 against the generator's truth,
 * with a baseline measured in the same run: the same scoring written the textbook way
 * (`linkage-baseline.ts`) on the same partitions. Targets: at most 5 minutes; at least 2 million
 * pairs per second per core. See docs/benchmarks.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
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
import { Queue } from 'bullmq';
import { workerConnection } from '@broker/jobs';
import {
  type IdentityValues,
  PartitionScorer,
  RecordBatch,
  fitModel,
  groupQuality,
  identityOf,
  linkInMemory,
  normaliseChunk,
  pairwiseQuality,
  partitionsFor,
  taskQuality,
} from '@broker/linkage';
import {
  COUNTY_DATASETS,
  type CountyDatasetSlug,
  countyRows,
  createCountyAgencies,
  createCountyUsers,
  countyKey,
  csvHeader,
  csvLine,
  defineCountyPurposes,
  generateUnseenPopulation,
  httpBrokerClient,
  UNSEEN_CULTURES,
  peopleForRecords,
  registerCountyDatasets,
} from '@broker/testing';
import {
  BROKER_MAIN,
  cpuSeconds,
  databaseUrl,
  dropDatabase,
  freePort,
  gql,
  post,
  stopChild,
  waitForBroker,
  withClient,
} from './bench-support';
import { naiveScore } from './linkage-baseline';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const SEED = 4242;
const DB = 'broker_bench_linkage';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TARGET_SECONDS = 300;
const TARGET_PAIRS_PER_CORE = 2_000_000;

const ROOT = resolve(__dirname, '..', '..');
const DATA_DIR = resolve(ROOT, 'bench', '.data');
const WORKER_MAIN = resolve(__dirname, '..', 'apps', 'worker', 'src', 'main.js');

interface RunRow {
  id: string;
  status: string;
  progress: number;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  stats: { records: number; candidatePairs: number; links: number; persons: number } | null;
}

async function main() {
  if (!Number.isInteger(RECORDS) || RECORDS < 1000)
    throw new Error('BENCH_RECORDS must be an integer ≥ 1000');
  if (!Number.isInteger(WORKERS) || WORKERS < 1) throw new Error('BENCH_WORKERS must be a positive integer');
  mkdirSync(DATA_DIR, { recursive: true });
  const files = await ensureData(RECORDS);
  console.log(
    `data: ${RECORDS.toLocaleString('en-US')} records of the generated county (seed ${SEED}) in bench/.data`,
  );
  console.log(
    `machine: ${cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );

  await dropDatabase(DB);
  const prefix = `bench_linkage_${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const token = `bench_${randomBytes(24).toString('base64url')}`;
  const broker = await startBroker(port, token, prefix);
  const workers: ChildProcess[] = [];
  try {
    const client = httpBrokerClient(`http://127.0.0.1:${port}`);
    const agencies = await createCountyAgencies(client, token);
    await defineCountyPurposes(client, token);
    const users = await createCountyUsers(client, token, agencies);
    const datasets = await registerCountyDatasets(client, users);

    const uploadStarted = performance.now();
    await Promise.all(
      COUNTY_DATASETS.map(async ({ slug }) => {
        const { id, provider } = datasets[slug];
        const res = await post(
          port,
          `/api/datasets/${id}/records`,
          {
            authorization: `Bearer ${countyKey(users, `steward:${provider}`)}`,
            'content-type': 'text/csv',
            'content-length': statSync(files.csv[slug]).size,
          },
          createReadStream(files.csv[slug], { highWaterMark: 256 * 1024 }),
        );
        if (res.status !== 200)
          throw new Error(`upload of ${slug} answered ${res.status}: ${res.body.slice(0, 500)}`);
      }),
    );
    console.log(
      `uploaded in ${((performance.now() - uploadStarted) / 1000).toFixed(1)} s (not part of the timing)`,
    );

    for (let w = 0; w < WORKERS; w++) workers.push(startWorker(prefix, w));
    // Timed from a ready worker pool: startup (migrations, Nest) is not linkage.
    await Promise.all(workers.map((w) => workerReady(w)));
    const cpuBefore = workers.map((w) => cpuSeconds(w.pid!) ?? 0);
    const started = performance.now();
    const { startLinkage } = await gql<{ startLinkage: RunRow }>(
      port,
      token,
      `mutation { startLinkage { id } }`,
    );
    let run: RunRow;
    let lastPrint = 0;
    for (;;) {
      ({ linkageRun: run } = await gql<{ linkageRun: RunRow }>(
        port,
        token,
        `query($id: ID!) { linkageRun(id: $id) { id status progress error startedAt finishedAt
           stats { records candidatePairs links persons } } }`,
        { id: startLinkage.id },
      ));
      if (run.status === 'SUCCEEDED' || run.status === 'FAILED') break;
      if (performance.now() - lastPrint > 10_000) {
        lastPrint = performance.now();
        console.log(
          `  ${((lastPrint - started) / 1000).toFixed(0)} s: ${run.status} ${(run.progress * 100).toFixed(0)}%`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const wall = (performance.now() - started) / 1000;
    if (run.status !== 'SUCCEEDED') throw new Error(`the run failed: ${run.error}`);
    const cpu = workers.map((w, i) => (cpuSeconds(w.pid!) ?? 0) - cpuBefore[i]);
    const peaks = workers.map((w) => peakMb(w.pid!) ?? 0);
    const runSeconds = (Date.parse(run.finishedAt!) - Date.parse(run.startedAt!)) / 1000;

    const { phases, scoreCpuMs, medianRate, partitions } = await phaseTimes(run.id, run.startedAt!);
    const stats = run.stats!;
    const pairsPerCore = stats.candidatePairs / (scoreCpuMs / 1000);
    const quality = await measureQuality(run.id, files.truth);

    console.log('');
    console.log(`records                ${stats.records.toLocaleString('en-US')}`);
    console.log(`candidate pairs        ${stats.candidatePairs.toLocaleString('en-US')}`);
    console.log(`links                  ${stats.links.toLocaleString('en-US')}`);
    console.log(
      `persons                ${stats.persons.toLocaleString('en-US')} (truth: ${quality.people.toLocaleString('en-US')})`,
    );
    console.log(
      `wall time              ${wall.toFixed(1)} s from startLinkage to SUCCEEDED (run: ${runSeconds.toFixed(1)} s)`,
    );
    console.log(`phases (s, end - end)  ${phases.map(([p, s]) => `${p} ${s.toFixed(1)}`).join(', ')}`);
    console.log(
      `worker CPU             ${cpu.map((c) => c.toFixed(1)).join(' + ')} s over ${WORKERS} workers`,
    );
    console.log(
      `pairs/s/core (scoring) ${Math.round(pairsPerCore).toLocaleString('en-US')} (${stats.candidatePairs.toLocaleString('en-US')} pairs in ${(scoreCpuMs / 1000).toFixed(2)} CPU s of score units, blocking included)`,
    );
    console.log(
      `  per partition        median ${Math.round(medianRate).toLocaleString('en-US')} pairs/s over ${partitions} partitions (each worker's first pays V8's compilation)`,
    );
    console.log(
      `peak RSS (VmHWM)       ${peaks.map((p) => p.toFixed(0)).join(' MB, ')} MB per worker; broker ${(peakMb(broker.pid!) ?? 0).toFixed(0)} MB`,
    );
    console.log(
      `quality                precision ${quality.precision.toFixed(4)}, recall ${quality.recall.toFixed(4)}, F1 ${quality.f1.toFixed(4)}`,
    );

    const baseline = measureBaseline();
    console.log('');
    console.log(
      `baseline (same partitions scored in this process, ${baseline.records.toLocaleString('en-US')} records, ${baseline.pairs.toLocaleString('en-US')} pairs):`,
    );
    console.log(`  library scorer       ${Math.round(baseline.fastRate).toLocaleString('en-US')} pairs/s`);
    console.log(`  textbook scorer      ${Math.round(baseline.naiveRate).toLocaleString('en-US')} pairs/s`);
    console.log(
      `  ratio                ${(baseline.fastRate / baseline.naiveRate).toFixed(1)}x (same pairs and links: ${baseline.same})`,
    );
    const unseen = measureUnseen();
    console.log('');
    console.log(
      `unseen population (${unseen.records.toLocaleString('en-US')} records, linked in this process in ${unseen.seconds.toFixed(1)} s, ${unseen.pairs.toLocaleString('en-US')} pairs):`,
    );
    console.log(
      `  quality              precision ${unseen.quality.precision.toFixed(4)}, recall ${unseen.quality.recall.toFixed(4)}, F1 ${unseen.quality.f1.toFixed(4)} (county: F1 ${quality.f1.toFixed(4)})`,
    );
    console.log(
      `  link / dedup F1      ${unseen.link.f1.toFixed(4)} across the registries, ${unseen.dedup.f1.toFixed(4)} within each (target ≥ 0.98)`,
    );
    console.log(
      `  F1 per group         ${unseen.groups.map((g) => `${g.name} ${g.f1.toFixed(4)}`).join(', ')}`,
    );
    console.log('');
    console.log(
      `ratio to targets       wall ${(TARGET_SECONDS / wall).toFixed(1)}x under ${TARGET_SECONDS} s; pairs/s/core ${(pairsPerCore / TARGET_PAIRS_PER_CORE).toFixed(2)}x of ${TARGET_PAIRS_PER_CORE.toLocaleString('en-US')}`,
    );
    const met = wall <= TARGET_SECONDS && pairsPerCore >= TARGET_PAIRS_PER_CORE;
    console.log(
      `targets (≤ ${TARGET_SECONDS} s, ≥ ${TARGET_PAIRS_PER_CORE.toLocaleString('en-US')} pairs/s/core): ${met ? 'met' : 'NOT met'}`,
    );
  } finally {
    for (const worker of workers) await stopChild(worker);
    await stopChild(broker);
    await cleanRedis(prefix);
    await dropDatabase(DB);
  }
}

/**
 * Linkage quality on the population the linker was not written for (libs/testing
 * unseen-population.ts), in this process: about 100,000 records, or as many as the county's if
 * fewer, with F1 across the registries (link) and within each (dedup), per name culture and per sex.
 */
function measureUnseen() {
  const population = generateUnseenPopulation({
    seed: SEED,
    people: Math.ceil(Math.min(RECORDS, 100_000) / 1.92),
  });
  const datasets = population.datasets.map((d) => d.records.map((r) => identityOf(r, d.definition.fields)));
  const truth = population.datasets.flatMap((d) => d.truth);
  const dataset = population.datasets.flatMap((d, k) => d.truth.map(() => k));
  const started = performance.now();
  const result = linkInMemory(datasets);
  const seconds = (performance.now() - started) / 1000;
  const predicted = result.labels.flatMap((l) => Array.from(l));
  const person = (i: number) => population.people[truth[i]];
  const groups = [
    ...UNSEEN_CULTURES.map((c) => ({ name: c, inGroup: (i: number) => person(i).culture === c })),
    { name: 'female', inGroup: (i: number) => person(i).sex === 'F' },
    { name: 'male', inGroup: (i: number) => person(i).sex === 'M' },
  ].map((g) => ({ name: g.name, f1: groupQuality(predicted, truth, g.inGroup).f1 }));
  return {
    records: truth.length,
    pairs: result.candidatePairs,
    seconds,
    quality: pairwiseQuality(predicted, truth),
    link: taskQuality(predicted, truth, dataset, 'link'),
    dedup: taskQuality(predicted, truth, dataset, 'dedup'),
    groups,
  };
}

/** Generates the records once per size: one CSV per dataset, and the truth (slug, key, person) as TSV. */
async function ensureData(records: number) {
  const base = resolve(DATA_DIR, `linkage-${records}-${SEED}`);
  const csv = Object.fromEntries(COUNTY_DATASETS.map((d) => [d.slug, `${base}-${d.slug}.csv`])) as Record<
    CountyDatasetSlug,
    string
  >;
  const truth = `${base}-truth.tsv`;
  if (existsSync(truth)) return { csv, truth };
  console.log(`generating ${records.toLocaleString('en-US')} records ...`);
  const outs = new Map(
    COUNTY_DATASETS.map((d) => {
      const out = createWriteStream(`${csv[d.slug]}.partial`);
      out.write(csvHeader(d.fields));
      return [d.slug, { out, fields: d.fields, key: d.keyField, buffer: '' }];
    }),
  );
  const truthOut = createWriteStream(`${truth}.partial`);
  let truthBuffer = '';
  let count = 0;
  // A few more people than needed; the stream stops at exactly `records` records.
  for (const row of countyRows({ seed: SEED, people: Math.ceil(peopleForRecords(records) * 1.05) })) {
    const target = outs.get(row.slug)!;
    target.buffer += csvLine(target.fields, row.record);
    truthBuffer += `${row.slug}\t${String(row.record[target.key])}\t${row.truth}\n`;
    if (target.buffer.length > 1 << 20) {
      if (!target.out.write(target.buffer)) await once(target.out, 'drain');
      target.buffer = '';
    }
    if (truthBuffer.length > 1 << 20) {
      if (!truthOut.write(truthBuffer)) await once(truthOut, 'drain');
      truthBuffer = '';
    }
    if (++count === records) break;
  }
  if (count < records) throw new Error(`the county gave only ${count} records`);
  for (const [slug, target] of outs) {
    target.out.end(target.buffer);
    await once(target.out, 'finish');
    renameSync(`${csv[slug]}.partial`, csv[slug]);
  }
  truthOut.end(truthBuffer);
  await once(truthOut, 'finish');
  renameSync(`${truth}.partial`, truth);
  return { csv, truth };
}

/** Pairwise quality of the run's persons against the truth file. */
async function measureQuality(runId: string, truthFile: string) {
  const truth = new Map<string, number>();
  for (const line of readFileSync(truthFile, 'utf8').split('\n')) {
    if (!line) continue;
    const [slug, key, person] = line.split('\t');
    truth.set(`${slug}\t${key}`, Number(person));
  }
  const rows = await withClient(DB, async (c) => {
    const result = await c.query<{ slug: string; record_key: string; person_id: string }>({
      text: `SELECT d.slug, p.record_key, p.person_id FROM linkage_person p JOIN dataset d ON d.id = p.dataset_id
              WHERE p.run_id = $1`,
      values: [runId],
    });
    return result.rows;
  });
  if (rows.length !== truth.size) throw new Error(`${rows.length} persons for ${truth.size} records`);
  const predicted = new Float64Array(rows.length);
  const people = new Float64Array(rows.length);
  rows.forEach((r, i) => {
    predicted[i] = Number(r.person_id);
    const t = truth.get(`${r.slug}\t${r.record_key}`);
    if (t === undefined) throw new Error(`no truth for ${r.slug} ${r.record_key}`);
    people[i] = t;
  });
  return { ...pairwiseQuality(predicted, people), people: new Set(people).size };
}

/** Phase end times from the units' commits, and the CPU the score units spent. */
async function phaseTimes(runId: string, startedAt: string) {
  return withClient(DB, async (c) => {
    const { rows } = await c.query<{ phase: string; ended: Date; cpu: string | null }>({
      text: `SELECT phase, max(done_at) AS ended, sum((stats->>'cpuMs')::numeric) AS cpu
               FROM linkage_unit WHERE run_id = $1 GROUP BY phase ORDER BY max(done_at)`,
      values: [runId],
    });
    let previous = Date.parse(startedAt);
    const phases: [string, number][] = rows.map((r) => {
      const seconds = (r.ended.getTime() - previous) / 1000;
      previous = r.ended.getTime();
      return [r.phase, seconds];
    });
    const score = rows.find((r) => r.phase === 'score');
    const units = await c.query<{ pairs: string; cpu: string }>({
      text: `SELECT stats->>'pairs' AS pairs, stats->>'cpuMs' AS cpu FROM linkage_unit
              WHERE run_id = $1 AND phase = 'score' AND (stats->>'cpuMs')::numeric > 0`,
      values: [runId],
    });
    const rates = units.rows.map((u) => Number(u.pairs) / (Number(u.cpu) / 1000)).sort((x, y) => x - y);
    const medianRate = rates.length ? rates[Math.floor(rates.length / 2)] : 0;
    return { phases, scoreCpuMs: Number(score?.cpu ?? 0), medianRate, partitions: rates.length };
  });
}

/**
 * The library's scorer against the textbook one, on the partitions of a 200,000-record slice of
 * the same data, in this process: the same pairs must come out, and the same links.
 */
function measureBaseline() {
  const slice = Math.min(RECORDS, 200_000);
  const byDataset = new Map<CountyDatasetSlug, IdentityValues[]>(COUNTY_DATASETS.map((d) => [d.slug, []]));
  let n = 0;
  for (const row of countyRows({ seed: SEED, people: peopleForRecords(slice) * 2 })) {
    byDataset
      .get(row.slug)!
      .push(identityOf(row.record, COUNTY_DATASETS.find((d) => d.slug === row.slug)!.fields));
    if (++n === slice) break;
  }
  const partitions = partitionsFor(slice);
  const chunks: RecordBatch[] = [];
  const parts = new Map<number, RecordBatch[]>();
  let d = 0;
  for (const rows of byDataset.values()) {
    for (let start = 0; start < rows.length; start += 50_000) {
      const chunk = normaliseChunk(chunks.length, d, rows.slice(start, start + 50_000), partitions);
      chunks.push(chunk.records);
      for (const [p, batch] of chunk.parts) parts.set(p, [...(parts.get(p) ?? []), batch]);
    }
    d++;
  }
  const batches = [...parts.values()].map((b) => RecordBatch.concat(b));
  const { model, tf } = fitModel(chunks, batches.slice(0, 1), partitions);
  let fastPairs = 0;
  let fastLinks = 0;
  let started = performance.now();
  for (const batch of batches) {
    const result = new PartitionScorer(batch).useModel(model, tf).score();
    fastPairs += result.pairs;
    fastLinks += result.links.size;
  }
  const fastSeconds = (performance.now() - started) / 1000;
  let naivePairs = 0;
  let naiveLinks = 0;
  started = performance.now();
  for (const batch of batches) {
    const result = naiveScore(batch, model, tf);
    naivePairs += result.pairs;
    naiveLinks += result.links;
  }
  const naiveSeconds = (performance.now() - started) / 1000;
  return {
    records: slice,
    pairs: fastPairs,
    fastRate: fastPairs / fastSeconds,
    naiveRate: naivePairs / naiveSeconds,
    same: fastPairs === naivePairs && fastLinks === naiveLinks,
  };
}

async function startBroker(port: number, token: string, prefix: string): Promise<ChildProcess> {
  const log = createWriteStream(resolve(DATA_DIR, 'linkage-broker.log'));
  const child = spawn(process.execPath, [BROKER_MAIN], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl(DB),
      BROKER_BOOTSTRAP_TOKEN: token,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      QUEUE_PREFIX: prefix,
      // The uploads would schedule a run of their own; the benchmark starts one itself.
      LINKAGE_DEBOUNCE_MS: '86400000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return waitForBroker(child, port, token, resolve(DATA_DIR, 'linkage-broker.log'));
}

function startWorker(prefix: string, n: number): ChildProcess {
  const log = createWriteStream(resolve(DATA_DIR, `linkage-worker-${n}.log`));
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, WORKER_MAIN], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl(DB),
      // Info: readiness is read from the log, and each unit's timing lands there.
      LOG_LEVEL: process.env.BENCH_WORKER_LOG_LEVEL ?? 'info',
      QUEUE_PREFIX: prefix,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

/** Resolves once a worker logs that it is ready; rejects if it exits first or takes a minute. */
function workerReady(child: ChildProcess): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('a worker did not get ready within 60 s')), 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-4096);
      if (seen.includes('"worker ready"')) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a worker exited with ${code} before it was ready`));
    });
  });
}

/** Removes the benchmark's queues from Redis. */
async function cleanRedis(prefix: string) {
  for (const name of ['linkage', 'maintenance']) {
    const queue = new Queue(name, { connection: workerConnection(REDIS_URL), prefix });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
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

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
