import type { ChildProcess } from 'node:child_process';
import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { QueueName } from '@broker/jobs';
import { PersonKeyIndex, pairwiseQuality, personKeyScope, personKeySql } from '@broker/linkage';
import { SqlParams } from '@broker/policy';
import {
  type BrokerClient,
  type SeededCounty,
  TestBroker,
  countyKey,
  seedCounty,
  WorkerProcesses,
} from '@broker/testing';

/**
 * Linkage end to end: runs started through the control plane and executed by real worker
 * processes (built into a directory of this test's own), killed mid-unit and replaced, against the
 * generated county's truth; pseudonyms computed in PostgreSQL.
 */

const RUN_FIELDS = `id status progress trigger error threshold startedAt finishedAt createdAt
  stats { records candidatePairs links persons } weightHistogram { lower upper pairs }`;
const MODEL_FIELDS = `thresholdProbability comparisons { comparison levels { level m u weight } }
  stats { unparsed { role values } pairsByRule { rule pairs } }`;

interface Run {
  id: string;
  status: string;
  progress: number;
  trigger: string;
  error: string | null;
  threshold: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  createdAt: string;
  stats: { records: number; candidatePairs: number; links: number; persons: number } | null;
  weightHistogram: { lower: number; upper: number; pairs: number }[];
}

describe('linkage runs', () => {
  let broker: TestBroker;
  /** Two records a reviewer decided are not one person (dataset id/key each). */
  let apartPair: [string, string] = ['', ''];
  let seeded: SeededCounty;
  /** Worker processes on the broker's database and queue prefix. */
  const workers = new WorkerProcesses('linkage-test', () => ({
    DATABASE_URL: broker.config.DATABASE_URL,
    REDIS_URL: broker.config.REDIS_URL,
    QUEUE_PREFIX: broker.config.QUEUE_PREFIX,
    LOG_LEVEL: 'warn',
    LINKAGE_CHUNK_RECORDS: '400',
    LINKAGE_PARTITIONS: '6',
    LINKAGE_LOCK_MS: '1500',
    LINKAGE_STALLED_INTERVAL_MS: '500',
    LINKAGE_WATCHDOG_MS: '1000',
    LINKAGE_RANDOM_PAIRS: '200000',
  }));
  const startWorker = (env: Record<string, string> = {}) => workers.start(env);
  const stopWorker = (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') => workers.stop(child, signal);

  const run = async (id: string): Promise<Run> =>
    (
      await broker.gqlOk<{ linkageRun: Run }>(
        broker.operatorKey,
        `query($id: ID!) { linkageRun(id: $id) { ${RUN_FIELDS} } }`,
        { id },
      )
    ).linkageRun;

  async function startLinkage(): Promise<Run> {
    const data = await broker.gqlOk<{ startLinkage: Run }>(
      broker.operatorKey,
      `mutation { startLinkage { ${RUN_FIELDS} } }`,
    );
    return data.startLinkage;
  }

  async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 60_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what}; worker output:\n${workers.tail(3000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const finished = (id: string) =>
    waitFor(`run ${id} to finish`, async () => {
      const r = await run(id);
      return r.status === 'SUCCEEDED' || r.status === 'FAILED' ? r : null;
    });

  /** A unit of the run that has started (attempted) and is not done, once `done` units are done. */
  async function unitInProgress(runId: string, done: number) {
    const [progress] = await broker.query<{ done: number }>(
      `SELECT count(*) FILTER (WHERE done_at IS NOT NULL)::int AS done FROM linkage_unit WHERE run_id = $1`,
      [runId],
    );
    if (progress.done < done) return null;
    const [active] = await broker.query<{ phase: string; unit: number }>(
      `SELECT phase, unit FROM linkage_unit WHERE run_id = $1 AND attempts > 0 AND done_at IS NULL`,
      [runId],
    );
    return active ?? null;
  }

  /** Each record's person in a run, as "dataset/key → person". */
  async function assignment(runId: string): Promise<Map<string, string>> {
    const rows = await broker.query<{ dataset_id: string; record_key: string; person_id: string }>(
      `SELECT dataset_id, record_key, person_id FROM linkage_person WHERE run_id = $1`,
      [runId],
    );
    return new Map(rows.map((r) => [`${r.dataset_id}/${r.record_key}`, r.person_id]));
  }

  /** Pairwise quality of an assignment against the generated county's truth. */
  function quality(persons: Map<string, string>) {
    const predicted: number[] = [];
    const truth: number[] = [];
    for (const { slug, definition, records, truth: people } of seeded.county.datasets) {
      const datasetId = seeded.datasets[slug].id;
      records.forEach((record, i) => {
        const person = persons.get(`${datasetId}/${String(record[definition.keyField])}`);
        if (person === undefined) throw new Error(`record ${slug}/${i} has no person`);
        predicted.push(Number(person));
        truth.push(people[i]);
      });
    }
    return pairwiseQuality(predicted, truth);
  }

  beforeAll(async () => {
    workers.compile();
    // The broker schedules a run 300 ms after the last ingestion (read when its module starts).
    process.env.LINKAGE_DEBOUNCE_MS = '300';
    broker = await TestBroker.start({ LABEL: 'linkage' });
    delete process.env.LINKAGE_DEBOUNCE_MS;
    const client: BrokerClient = {
      gql: (apiKey, query, variables) => broker.gqlOk(apiKey, query, variables),
      upload: (apiKey, datasetId, contentType, body) => broker.upload(apiKey, datasetId, contentType, body),
    };
    seeded = await seedCounty(client, { operatorKey: broker.operatorKey, seed: 17, people: 1000 });
    // Seeding's ingestions scheduled a run; these tests start their own.
    await broker.app.get<Queue>(getQueueToken(QueueName.LINKAGE)).obliterate({ force: true });
  }, 120_000);

  afterAll(async () => {
    await workers.stopAll('SIGKILL');
    await broker?.close();
    workers.remove();
  });

  let first: Run;
  let firstAssignment: Map<string, string>;

  it('lets only the operator start runs, and the operator and auditors read them', async () => {
    // The seeded agencies have their stewards already: they create their agencies' users.
    const analyst = await broker.createAs(countyKey(seeded.users, 'steward:RESEARCH'), {
      agencyId: seeded.agencies.RESEARCH.id,
      role: 'ANALYST',
    });
    const steward = await broker.createAs(countyKey(seeded.users, 'steward:CBO'), {
      agencyId: seeded.agencies.CBO.id,
      role: 'STEWARD',
    });
    const auditor = await broker.createUser({ role: 'AUDITOR' });
    for (const key of [analyst.apiKey, steward.apiKey, auditor.apiKey]) {
      const started = await broker.gql(key, `mutation { startLinkage { id } }`);
      expect(started.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    for (const key of [analyst.apiKey, steward.apiKey]) {
      const listed = await broker.gql(key, `{ linkageRuns { id } }`);
      expect(listed.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect((await broker.gqlOk(auditor.apiKey, `{ linkageRuns { id } }`)).linkageRuns).toEqual([]);
    // An unknown id is NOT_FOUND, a malformed one BAD_USER_INPUT (DESIGN §4), as for other objects.
    for (const [id, code] of [
      ['00000000-0000-4000-8000-000000000000', 'NOT_FOUND'],
      ['not-an-id', 'BAD_USER_INPUT'],
    ]) {
      const res = await broker.gql(broker.operatorKey, `query($id: ID!) { linkageRun(id: $id) { id } }`, {
        id,
      });
      expect(res.errors?.[0]?.extensions?.code).toBe(code);
    }
  });

  it('queues one run at a time: a second request joins the run still waiting', async () => {
    first = await startLinkage();
    expect(first).toMatchObject({
      status: 'QUEUED',
      progress: 0,
      trigger: 'MANUAL',
      stats: null,
      weightHistogram: [],
    });
    const again = await startLinkage();
    expect(again.id).toBe(first.id);
  });

  it('links the county through a worker: persons match the truth, statistics and weights are recorded', async () => {
    startWorker();
    const done = await finished(first.id);
    expect(done.error).toBeNull();
    expect(done.status).toBe('SUCCEEDED');
    expect(done.progress).toBe(1);
    expect(done.threshold).toBe(4);
    expect(Date.parse(done.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done.startedAt!));

    const records = seeded.county.datasets.reduce((n, d) => n + d.records.length, 0);
    const people = new Set(seeded.county.datasets.flatMap((d) => d.truth)).size;
    expect(done.stats!.records).toBe(records);
    expect(done.stats!.candidatePairs).toBeGreaterThan(done.stats!.links);
    expect(done.stats!.persons).toBeGreaterThan(people * 0.95);
    expect(done.stats!.persons).toBeLessThan(people * 1.1);
    const binned = done.weightHistogram.reduce((n, b) => n + b.pairs, 0);
    expect(binned).toBe(done.stats!.candidatePairs);
    for (const bin of done.weightHistogram) expect(bin.upper - bin.lower).toBe(1);
    const linked = done.weightHistogram
      .filter((b) => b.lower >= done.threshold!)
      .reduce((n, b) => n + b.pairs, 0);
    expect(linked).toBe(done.stats!.links);

    // The model is the run's own, and its statistics say what blocking produced and what was not read.
    const { linkageRun } = await broker.gqlOk<{
      linkageRun: {
        thresholdProbability: number;
        comparisons: {
          comparison: string;
          levels: { level: string; m: number; u: number; weight: number }[];
        }[];
        stats: {
          unparsed: { role: string; values: number }[];
          pairsByRule: { rule: string; pairs: number }[];
        };
      };
    }>(broker.operatorKey, `query($id: ID!) { linkageRun(id: $id) { ${MODEL_FIELDS} } }`, { id: first.id });
    expect(linkageRun.thresholdProbability).toBeCloseTo(16 / 17, 10);
    expect(linkageRun.comparisons.map((c) => c.comparison)).toEqual([
      'first_name',
      'last_name',
      'date_of_birth',
      'ssn',
      'sex',
      'zip',
      'middle_initial',
      'id_number',
      'address',
      'city',
    ]);
    const dob = linkageRun.comparisons.find((c) => c.comparison === 'date_of_birth')!;
    expect(dob.levels[0].level).toBe('exact');
    expect(dob.levels[0].weight).toBeCloseTo(Math.log2(dob.levels[0].m / dob.levels[0].u), 6);
    expect(dob.levels[0].weight).toBeGreaterThan(5);
    expect(dob.levels[4].weight).toBeLessThan(0);
    const rules = linkageRun.stats.pairsByRule;
    expect(rules.reduce((n, r) => n + r.pairs, 0)).toBe(done.stats!.candidatePairs);
    expect(rules.find((r) => r.rule === 'sorted_name_codes+zip')!.pairs).toBeGreaterThan(0);
    expect(linkageRun.stats.unparsed.map((u) => u.role)).toContain('SSN');
    expect(linkageRun.stats.unparsed.every((u) => u.values >= 0)).toBe(true);

    firstAssignment = await assignment(first.id);
    expect(firstAssignment.size).toBe(records);
    const q = quality(firstAssignment);
    expect(q.precision).toBeGreaterThanOrEqual(0.95);
    expect(q.recall).toBeGreaterThanOrEqual(0.95);

    const { auditEvents } = await broker.gqlOk(
      broker.operatorKey,
      `{ auditEvents(filter: { action: "LINKAGE_RUN" }) { nodes { action decision reason rowCount } } }`,
    );
    expect(auditEvents.nodes).toEqual([
      {
        action: 'LINKAGE_RUN',
        decision: 'ALLOW',
        reason: `SUCCEEDED: ${records} records, ${done.stats!.links} links, ${done.stats!.persons} persons`,
        rowCount: records,
      },
    ]);
  }, 120_000);

  it('finishes a run whose worker is killed mid-unit, with the same persons as an undisturbed run', async () => {
    await workers.stopAll();
    const second = await startLinkage();
    expect(second.id).not.toBe(first.id);
    // Every unit of this worker pauses before it commits: the kill lands inside one.
    const doomed = startWorker({ LINKAGE_UNIT_PAUSE_MS: '500' });
    const victim = await waitFor('a unit in progress after three are done', () =>
      unitInProgress(second.id, 3),
    );
    await stopWorker(doomed, 'SIGKILL');
    expect((await run(second.id)).status).toBe('RUNNING');

    startWorker();
    const done = await finished(second.id);
    expect(done.status).toBe('SUCCEEDED');
    const [redone] = await broker.query<{ attempts: number; done: boolean }>(
      `SELECT attempts, done_at IS NOT NULL AS done FROM linkage_unit WHERE run_id = $1 AND phase = $2 AND unit = $3`,
      [second.id, victim.phase, victim.unit],
    );
    expect(redone.done).toBe(true);
    expect(redone.attempts).toBeGreaterThanOrEqual(2);

    // Same data, same persons, and (ids being stable across runs) the same person ids.
    const secondAssignment = await assignment(second.id);
    expect(secondAssignment).toEqual(firstAssignment);
    const firstRun = await run(first.id);
    expect(done.stats).toEqual(firstRun.stats);
    expect(done.weightHistogram).toEqual(firstRun.weightHistogram);
    // The superseded run's persons are gone; the run in force is the second.
    expect(await assignment(first.id)).toEqual(new Map());
    const runs = (await broker.gqlOk(broker.operatorKey, `{ linkageRuns { id } }`)).linkageRuns as {
      id: string;
    }[];
    expect(runs.map((r) => r.id)).toEqual([second.id, first.id]);
  }, 120_000);

  it("refreshes the planner's statistics of the persons table in the transaction that puts a run in force", async () => {
    const [current] = await broker.query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    const inForce = await run(current.run);
    // One ANALYZE per run that finished (two so far), none after it.
    const [table] = await broker.query<{ analyze_count: string; last_analyze: Date }>(
      `SELECT analyze_count, last_analyze FROM pg_stat_user_tables WHERE relname = 'linkage_person'`,
    );
    expect(Number(table.analyze_count)).toBe(2);
    expect(table.last_analyze.getTime()).toBeGreaterThanOrEqual(Date.parse(inForce.finishedAt!));
    // Taken after the superseded run's persons were deleted: the planner sees the run in force only.
    const records = seeded.county.datasets.reduce((n, d) => n + d.records.length, 0);
    const [relation] = await broker.query<{ reltuples: number }>(
      `SELECT reltuples FROM pg_class WHERE oid = 'linkage_person'::regclass`,
    );
    expect(relation.reltuples).toBe(records);
    const [runColumn] = await broker.query<{ n_distinct: number; most_common_vals: string }>(
      `SELECT n_distinct, most_common_vals::text FROM pg_stats WHERE tablename = 'linkage_person' AND attname = 'run_id'`,
    );
    expect(runColumn).toEqual({ n_distinct: 1, most_common_vals: `{${current.run}}` });
  });

  it('lets a worker stopped with SIGTERM finish its unit, and finishes a run whose jobs Redis lost', async () => {
    await workers.stopAll();
    const third = await startLinkage();
    const stopping = startWorker({ LINKAGE_UNIT_PAUSE_MS: '600' });
    const inProgress = await waitFor('a unit in progress after one is done', () =>
      unitInProgress(third.id, 1),
    );
    await stopWorker(stopping, 'SIGTERM');
    const [unit] = await broker.query<{ attempts: number; done: boolean }>(
      `SELECT attempts, done_at IS NOT NULL AS done FROM linkage_unit WHERE run_id = $1 AND phase = $2 AND unit = $3`,
      [third.id, inProgress.phase, inProgress.unit],
    );
    // Finished by the worker that was stopping, not redone by another.
    expect(unit).toEqual({ attempts: 1, done: true });

    // Every job of the queue gone, as after a Redis restart without persistence: the next
    // worker's watchdog re-creates the run's jobs from its state in PostgreSQL.
    await broker.app.get<Queue>(getQueueToken(QueueName.LINKAGE)).obliterate({ force: true });
    startWorker();
    const done = await finished(third.id);
    expect(done.status).toBe('SUCCEEDED');
    expect(await assignment(third.id)).toEqual(firstAssignment);
  }, 120_000);

  it('shows the pairs nearest the threshold as patterns, and keeps decisions', async () => {
    const [current] = await broker.query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    const REVIEW = `query($id: ID!) { linkageReviewPairs(runId: $id) {
      pair weight probability decision levels { comparison level weight } } }`;
    const { linkageReviewPairs: pairs } = await broker.gqlOk<{
      linkageReviewPairs: {
        pair: number;
        weight: number;
        probability: number;
        decision: boolean | null;
        levels: { comparison: string; level: string; weight: number }[];
      }[];
    }>(broker.operatorKey, REVIEW, { id: current.run });
    expect(pairs.length).toBeGreaterThan(0);
    expect(pairs.length).toBeLessThanOrEqual(100);
    expect(pairs.map((p) => p.pair)).toEqual(pairs.map((_, k) => k + 1));
    // Nearest the threshold first, within the review margin, as levels and weights only.
    const distance = pairs.map((p) => Math.abs(p.weight - 4));
    expect(distance).toEqual([...distance].sort((a, b) => a - b));
    for (const p of pairs) {
      expect(distance[p.pair - 1]).toBeLessThan(2);
      expect(p.probability).toBeCloseTo(1 / (1 + 2 ** -p.weight), 10);
      expect(p.levels.map((l) => l.comparison)).toHaveLength(10);
      expect(p.decision).toBeNull();
    }
    const stored = await broker.query<{
      pair: number;
      dataset_a: string;
      key_a: string;
      dataset_b: string;
      key_b: string;
    }>(
      `SELECT pair, dataset_a, key_a, dataset_b, key_b FROM linkage_review_pair WHERE run_id = $1 ORDER BY pair`,
      [current.run],
    );
    const answered = JSON.stringify(pairs);
    for (const row of stored) {
      expect(answered).not.toContain(row.key_a);
      expect(answered).not.toContain(row.key_b);
    }

    // The operator decides that the linked pair nearest the threshold is not one person: audited
    // without naming the records, and kept apart by the next run (below).
    const target = pairs.find((p) => p.weight >= 4) ?? pairs[0];
    const decided = await broker.gqlOk<{ decideLinkagePair: { pair: number; decision: boolean } }>(
      broker.operatorKey,
      `mutation($id: ID!, $pair: Int!) { decideLinkagePair(runId: $id, pair: $pair, same: false) { pair decision } }`,
      { id: current.run, pair: target.pair },
    );
    expect(decided.decideLinkagePair).toEqual({ pair: target.pair, decision: false });
    const { auditEvents } = await broker.gqlOk<{
      auditEvents: { nodes: { action: string; reason: string }[] };
    }>(
      broker.operatorKey,
      `{ auditEvents(filter: { action: "LINKAGE_PAIR_DECIDED" }) { nodes { action reason } } }`,
    );
    expect(auditEvents.nodes).toEqual([{ action: 'LINKAGE_PAIR_DECIDED', reason: 'not one person' }]);
    const row = stored[target.pair - 1];
    apartPair = [`${row.dataset_a}/${row.key_a}`, `${row.dataset_b}/${row.key_b}`];
  });

  it("shows a steward only the pairs of two of its own agency's records: another agency's are NOT_FOUND", async () => {
    const [current] = await broker.query<{ run: string }>(
      `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
    );
    const run = current.run;
    const REVIEW = `query($id: ID!) { linkageReviewPairs(runId: $id) {
      pair weight probability decision levels { comparison level weight } } }`;
    const SIDE = `query($id: ID!, $pair: Int!) { linkageReviewPairSide(runId: $id, pair: $pair) {
      dataset recordKey values } }`;
    const DECIDE = `mutation($id: ID!, $pair: Int!, $same: Boolean!) {
      decideLinkagePair(runId: $id, pair: $pair, same: $same) { pair weight probability decision levels { comparison level weight } } }`;
    type Pair = {
      pair: number;
      weight: number;
      probability: number;
      decision: boolean | null;
      levels: { comparison: string; level: string; weight: number }[];
    };
    type Side = { dataset: string; recordKey: string; values: Record<string, string | null> };
    const reviewOf = async (apiKey: string) =>
      (await broker.gqlOk<{ linkageReviewPairs: Pair[] }>(apiKey, REVIEW, { id: run })).linkageReviewPairs;
    /** What a refusal tells its caller: the data, each error's message, code and path. */
    const told = (result: {
      data?: unknown;
      errors?: readonly { message: string; path?: unknown; extensions?: Record<string, unknown> }[];
    }) => ({
      data: result.data ?? null,
      errors: (result.errors ?? []).map((e) => ({
        message: e.message,
        code: e.extensions?.code,
        path: e.path,
      })),
    });
    const user = (handle: string) => seeded.users.find((u) => u.handle === handle)!;
    const sheriff = user('steward:SHERIFF');
    const auditor = user('auditor:OVERSIGHT');
    const bookings = seeded.datasets.jail_bookings.id;
    const bookingRecords = seeded.county.datasets.find((d) => d.slug === 'jail_bookings')!.records;

    // A pair of two of the sheriff's records (duplicates within its agency), added to the run's
    // review with the pattern of its first pair, so that one surely exists.
    const [{ last }] = await broker.query<{ last: number }>(
      `SELECT max(pair)::int AS last FROM linkage_review_pair WHERE run_id = $1`,
      [run],
    );
    const ownKeys = [String(bookingRecords[0].booking_id), String(bookingRecords[1].booking_id)].sort();
    await broker.query(
      `INSERT INTO linkage_review_pair (run_id, pair, dataset_a, key_a, dataset_b, key_b, levels, weight)
       SELECT run_id, $2, $3, $4, $3, $5, levels, weight FROM linkage_review_pair WHERE run_id = $1 AND pair = 1`,
      [run, last + 1, bookings, ownKeys[0], ownKeys[1]],
    );
    const ownPair = last + 1;
    try {
      const stored = await broker.query<{
        pair: number;
        key_a: string;
        key_b: string;
        provider_a: string;
        provider_b: string;
      }>(
        `SELECT r.pair, r.key_a, r.key_b, da.provider_agency_id AS provider_a, db.provider_agency_id AS provider_b
           FROM linkage_review_pair r
           JOIN dataset da ON da.id = r.dataset_a
           JOIN dataset db ON db.id = r.dataset_b
          WHERE r.run_id = $1 ORDER BY r.pair`,
        [run],
      );
      // The run has pairs across agencies, some with a record of the sheriff's.
      const cross = stored.find(
        (r) =>
          r.provider_a !== r.provider_b &&
          (r.provider_a === sheriff.agencyId || r.provider_b === sheriff.agencyId),
      )!;
      expect(cross).toBeDefined();

      // The operator and the auditor see every pair, the same, as patterns: the type has no field
      // for a value or a key, and no key or identity value of a pair's records is in the answer.
      const operatorView = await reviewOf(broker.operatorKey);
      expect(operatorView.map((p) => p.pair)).toEqual(stored.map((r) => r.pair));
      expect(await reviewOf(auditor.apiKey)).toEqual(operatorView);
      const { __type: pairType } = await broker.gqlOk<{ __type: { fields: { name: string }[] } }>(
        broker.operatorKey,
        `{ __type(name: "LinkageReviewPair") { fields { name } } }`,
      );
      expect(pairType.fields.map((f) => f.name).sort()).toEqual([
        'decision',
        'levels',
        'pair',
        'probability',
        'weight',
      ]);
      const { __type: levelType } = await broker.gqlOk<{ __type: { fields: { name: string }[] } }>(
        broker.operatorKey,
        `{ __type(name: "LinkageReviewLevel") { fields { name } } }`,
      );
      expect(levelType.fields.map((f) => f.name).sort()).toEqual(['comparison', 'level', 'weight']);
      const crossView = operatorView.find((p) => p.pair === cross.pair)!;
      expect(crossView.levels).toHaveLength(10);
      const crossText = JSON.stringify(crossView);
      expect(crossText).not.toContain(cross.key_a);
      expect(crossText).not.toContain(cross.key_b);
      for (const l of crossView.levels) expect(l.level).toMatch(/^[a-z_0-9]+$/);
      const sheriffKey = cross.provider_a === sheriff.agencyId ? cross.key_a : cross.key_b;
      const sheriffRecord = bookingRecords.find((r) => String(r.booking_id) === sheriffKey)!;
      for (const name of ['first_name', 'middle_name', 'last_name', 'dob', 'ssn']) {
        const value = sheriffRecord[name];
        if (typeof value === 'string' && value.length > 3) expect(crossText).not.toContain(value);
      }

      // Each steward sees exactly the pairs both of whose records its agency holds, as the operator does.
      for (const steward of seeded.users.filter((u) => u.role === 'STEWARD')) {
        const own = stored.filter(
          (r) => r.provider_a === steward.agencyId && r.provider_b === steward.agencyId,
        );
        const seen = await reviewOf(steward.apiKey);
        expect(seen).toEqual(operatorView.filter((p) => own.some((r) => r.pair === p.pair)));
      }
      const sheriffView = await reviewOf(sheriff.apiKey);
      expect(sheriffView.map((p) => p.pair)).toContain(ownPair);
      expect(sheriffView.map((p) => p.pair)).not.toContain(cross.pair);
      expect(
        sheriffView.every((p) => {
          const r = stored.find((s) => s.pair === p.pair)!;
          return r.provider_a === sheriff.agencyId && r.provider_b === sheriff.agencyId;
        }),
      ).toBe(true);

      // The pair across agencies answers the sheriff exactly as a pair that does not exist.
      const missing = 1_000_000;
      const sideCross = await broker.gql(sheriff.apiKey, SIDE, { id: run, pair: cross.pair });
      const sideMissing = await broker.gql(sheriff.apiKey, SIDE, { id: run, pair: missing });
      expect(told(sideCross).errors[0]?.code).toBe('NOT_FOUND');
      expect(told(sideCross)).toEqual(told(sideMissing));
      const decisionsBefore = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM linkage_decision`,
      );
      const decideCross = await broker.gql(sheriff.apiKey, DECIDE, { id: run, pair: cross.pair, same: true });
      const decideMissing = await broker.gql(sheriff.apiKey, DECIDE, { id: run, pair: missing, same: true });
      expect(told(decideCross).errors[0]?.code).toBe('NOT_FOUND');
      expect(told(decideCross)).toEqual(told(decideMissing));
      expect(await broker.query(`SELECT count(*)::int AS n FROM linkage_decision`)).toEqual(decisionsBefore);
      expect((await reviewOf(broker.operatorKey)).find((p) => p.pair === cross.pair)!.decision).toBe(
        crossView.decision,
      );

      // Its own pair: both records, their identity fields, and a decision it may take.
      const { linkageReviewPairSide: side } = await broker.gqlOk<{ linkageReviewPairSide: Side[] }>(
        sheriff.apiKey,
        SIDE,
        { id: run, pair: ownPair },
      );
      expect(side.map((r) => [r.dataset, r.recordKey])).toEqual([
        ['jail_bookings', ownKeys[0]],
        ['jail_bookings', ownKeys[1]],
      ]);
      for (const r of side) {
        const record = bookingRecords.find((b) => String(b.booking_id) === r.recordKey)!;
        expect(r.values.last_name).toBe(record.last_name);
      }
      // Each read is audited, naming the run and the pair, not the records; a refused one is not a read.
      const reads = await broker.query<{
        actor_user_id: string;
        actor_agency_id: string;
        row_count: number;
        details: unknown;
      }>(
        `SELECT actor_user_id, actor_agency_id, row_count, details FROM audit_event
          WHERE action = 'LINKAGE_PAIR_READ' ORDER BY seq`,
      );
      expect(reads).toEqual([
        {
          actor_user_id: sheriff.id,
          actor_agency_id: sheriff.agencyId,
          row_count: 2,
          details: { runId: run, pair: ownPair },
        },
      ]);
      const { decideLinkagePair: decided } = await broker.gqlOk<{ decideLinkagePair: Pair }>(
        sheriff.apiKey,
        DECIDE,
        { id: run, pair: ownPair, same: true },
      );
      expect(decided).toEqual({ ...operatorView.find((p) => p.pair === ownPair)!, decision: true });
      expect(
        await broker.query(
          `SELECT key_a, key_b, same, decided_by FROM linkage_decision
            WHERE dataset_a = $1 AND dataset_b = $1 AND key_a = $2 AND key_b = $3`,
          [bookings, ownKeys[0], ownKeys[1]],
        ),
      ).toEqual([{ key_a: ownKeys[0], key_b: ownKeys[1], same: true, decided_by: sheriff.id }]);
    } finally {
      // The next run must not see this test's pair or decision.
      await broker.query(`DELETE FROM linkage_review_pair WHERE run_id = $1 AND pair = $2`, [run, ownPair]);
      await broker.query(
        `DELETE FROM linkage_decision WHERE dataset_a = $1 AND dataset_b = $1 AND key_a = $2 AND key_b = $3`,
        [bookings, ownKeys[0], ownKeys[1]],
      );
    }
  });

  it('runs again after ingestion (debounced), keeping person ids and linking the new records', async () => {
    const previous = (await broker.gqlOk(broker.operatorKey, `{ linkageRuns { id } }`)).linkageRuns[0].id;
    const before = await assignment(previous);
    // A personKey lookup table of the run in force, which the next run's worker builds for it.
    const scope = personKeyScope(seeded.agencies.RESEARCH.id, 'RECIDIVISM_EVALUATION');
    const bookingsId = seeded.datasets.jail_bookings.id;
    const persons = (run: Map<string, string>) =>
      new Set([...run].filter(([record]) => record.startsWith(`${bookingsId}/`)).map(([, person]) => person))
        .size;
    // The ROWS agreement that releases personKey on the bookings (no row filter: every linked record).
    const agreementId = seeded.agreements.find(
      (a) => a.title === 'Jail bookings for recidivism evaluation',
    )!.id;
    expect(
      await broker.app
        .get(PersonKeyIndex)
        .build({ agreementId, scope, datasetId: bookingsId, rowFilter: null }),
    ).toBe(persons(before));
    const steward = seeded.users.find((u) => u.handle === 'steward:SHERIFF')!;
    const bookings = seeded.county.datasets.find((d) => d.slug === 'jail_bookings')!;
    const copy = { ...bookings.records[0], booking_id: 'BK-NEWONE1' };
    const report = await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $records: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $records) { inserted } }`,
      { id: seeded.datasets.jail_bookings.id, records: [copy, { ...copy, booking_id: 'BK-NEWONE2' }] },
    );
    expect(report.ingestRecords.inserted).toBe(2);
    const triggered = await waitFor('a run triggered by ingestion', async () => {
      const { linkageRuns } = await broker.gqlOk<{ linkageRuns: Run[] }>(
        broker.operatorKey,
        `{ linkageRuns { ${RUN_FIELDS} } }`,
      );
      return linkageRuns.find((r) => r.trigger === 'INGESTION') ?? null;
    });
    const done = await finished(triggered.id);
    expect(done.status).toBe('SUCCEEDED');
    const after = await assignment(done.id);
    expect(after.size).toBe(before.size + 2);
    // The model is refitted on the new records too, so a borderline link may turn; persons stay.
    const kept = [...before].filter(([record, person]) => after.get(record) === person).length;
    expect(kept / before.size).toBeGreaterThanOrEqual(0.99);
    // The two copies of one booking are one person: the person of the booking they copy.
    const datasetId = seeded.datasets.jail_bookings.id;
    const original = after.get(`${datasetId}/${String(bookings.records[0].booking_id)}`);
    expect(after.get(`${datasetId}/BK-NEWONE1`)).toBe(original);
    expect(after.get(`${datasetId}/BK-NEWONE2`)).toBe(original);
    // The pair decided "not one person" above is two persons, whatever its weight.
    expect(after.get(apartPair[0])).not.toBe(after.get(apartPair[1]));
    // The lookup table was built for the new run, and the previous run's dropped.
    const tables = () =>
      broker.query<{ run_id: string; scope: string; dataset_id: string; persons: number }>(
        `SELECT s.run_id, s.scope, s.dataset_id,
                (SELECT count(DISTINCT k.person_id) FROM person_key k WHERE k.scope_id = s.id)::int AS persons
           FROM person_key_scope s ORDER BY s.built_at`,
      );
    await waitFor('the lookup table renewed', async () => {
      const now = await tables();
      return now.length === 1 && now[0].run_id === done.id;
    });
    expect(await tables()).toEqual([
      { run_id: done.id, scope, dataset_id: bookingsId, persons: persons(after) },
    ]);
  }, 120_000);

  describe('personKey', () => {
    /** personKey of every record of a dataset for one (recipient, purpose), by record key. */
    async function keys(slug: string, keyField: string, agencyId: string, purpose: string) {
      const params = new SqlParams();
      const datasetId = seeded.datasets[slug as keyof typeof seeded.datasets].id;
      const expression = personKeySql(params, datasetId, agencyId, purpose, `t."${keyField}"::text`);
      const rows = await broker.query<{ key: string; pk: string | null }>(
        `SELECT t."${keyField}"::text AS key, ${expression} AS pk FROM records."${slug}" t`,
        params.values,
      );
      return new Map(rows.map((r) => [r.key, r.pk]));
    }

    it('is one key per person within a (recipient, purpose), and unrelated across recipients and purposes', async () => {
      const research = seeded.agencies.RESEARCH.id;
      const probation = seeded.agencies.PROBATION.id;
      const [current] = await broker.query<{ run: string }>(
        `SELECT current_run_id AS run FROM linkage_state WHERE id = 1`,
      );
      const persons = await assignment(current.run);
      // A person with a booking and a court case.
      const bookingsId = seeded.datasets.jail_bookings.id;
      const casesId = seeded.datasets.court_cases.id;
      const byPerson = new Map<string, { booking?: string; case?: string }>();
      for (const [record, person] of persons) {
        const [datasetId, key] = [record.slice(0, 36), record.slice(37)];
        const entry = byPerson.get(person) ?? {};
        if (datasetId === bookingsId) entry.booking = key;
        if (datasetId === casesId) entry.case = key;
        byPerson.set(person, entry);
      }
      const both = [...byPerson.values()].filter((e) => e.booking && e.case);
      expect(both.length).toBeGreaterThan(10);
      const [a, b] = both;

      const bookings = await keys('jail_bookings', 'booking_id', research, 'RECIDIVISM_EVALUATION');
      const cases = await keys('court_cases', 'case_id', research, 'RECIDIVISM_EVALUATION');
      expect(bookings.get(a.booking!)).toMatch(/^[0-9a-f]{64}$/);
      expect(cases.get(a.case!)).toBe(bookings.get(a.booking!));
      expect(cases.get(b.case!)).toBe(bookings.get(b.booking!));
      expect(bookings.get(b.booking!)).not.toBe(bookings.get(a.booking!));

      const otherRecipient = await keys('jail_bookings', 'booking_id', probation, 'RECIDIVISM_EVALUATION');
      const otherPurpose = await keys('jail_bookings', 'booking_id', research, 'SUPERVISION');
      const otherCases = await keys('court_cases', 'case_id', probation, 'RECIDIVISM_EVALUATION');
      expect(otherRecipient.get(a.booking!)).toMatch(/^[0-9a-f]{64}$/);
      expect(otherRecipient.get(a.booking!)).not.toBe(bookings.get(a.booking!));
      expect(otherPurpose.get(a.booking!)).not.toBe(bookings.get(a.booking!));
      expect(otherPurpose.get(a.booking!)).not.toBe(otherRecipient.get(a.booking!));
      expect(otherCases.get(a.case!)).toBe(otherRecipient.get(a.booking!));
      // No key of one scope is a key of another: nothing joins across them.
      const research_ = new Set(bookings.values());
      for (const key of otherRecipient.values()) expect(research_.has(key)).toBe(false);
    });

    it('is NULL for a record the run in force did not link', async () => {
      await broker.query(
        `INSERT INTO records."jail_bookings" (booking_id, person_id, first_name, last_name, dob, booking_date)
         VALUES ('BK-UNLINKED', 'SO-X', 'Ada', 'Lovelace', '1990-01-01', '2025-01-01')`,
      );
      const bookings = await keys(
        'jail_bookings',
        'booking_id',
        seeded.agencies.RESEARCH.id,
        'RECIDIVISM_EVALUATION',
      );
      expect(bookings.get('BK-UNLINKED')).toBeNull();
      expect([...bookings.values()].filter((k) => k === null)).toHaveLength(1);
    });

    it('is a cheap lookup: one index probe per record, the scoped key computed once', async () => {
      const params = new SqlParams();
      const expression = personKeySql(
        params,
        seeded.datasets.jail_bookings.id,
        seeded.agencies.RESEARCH.id,
        'RECIDIVISM_EVALUATION',
        `t."booking_id"::text`,
      );
      const plan = await broker.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT ${expression} FROM records."jail_bookings" t`,
        params.values,
      );
      const text = plan.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index (Only )?Scan using linkage_person_pkey/);
      // The secret's row is read once (its InitPlan), not once per record.
      expect(text).toMatch(
        /Seq Scan on linkage_secret s \(actual rows=1 loops=1\)|Index Scan using linkage_secret_pkey on linkage_secret s \(actual rows=1 loops=1\)/,
      );
    });
  });
});
