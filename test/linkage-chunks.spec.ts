import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { AuditService } from '@broker/audit';
import { Database, LOGGER } from '@broker/core';
import { LINKAGE_CHUNKS_LOCK, type LinkagePhase } from '@broker/jobs';
import {
  LinkageEngine,
  LinkageQueue,
  type LinkageRunRow,
  LinkageStore,
  PersonKeyIndex,
  RecordBatch,
  deserialiseLinks,
  loadLinkageConfig,
} from '@broker/linkage';
import { RetentionService } from '@broker/registry';
import { TestBroker } from '@broker/testing';
import { LinkageChunksFinished1766200000000 } from '../libs/core/src/database/migrations/1766200000000-linkage-chunks-finished';
import { ClusterPhase } from '../libs/linkage/src/phases/cluster.phase';

const FIRST = ['Ada', 'Boris', 'Celia', 'Dmitri', 'Edna', 'Fergus', 'Gita', 'Hamish', 'Ines', 'Jonas'];
const LAST = ['Okafor', 'Lindqvist', 'Moreau', 'Novak', 'Petrov', 'Quintero', 'Rossi', 'Sato', 'Tanaka'];
const PERSONS = 14;
const RECORDS = 70;
const keyOf = (prefix: string, i: number) => `${prefix}${String(i).padStart(3, '0')}`;
const key = (i: number) => keyOf('R', i);
/** The person a record was written for: the same for every prefix. */
const personOf = (k: string) => Number(k.slice(1)) % PERSONS;
/** Past retention: the whole first chunk, the end of the second and all of the third, the very last. */
const DESTROYED = new Set([
  ...Array.from({ length: 10 }, (_, i) => i),
  ...Array.from({ length: 15 }, (_, i) => 15 + i),
  69,
]);

/**
 * A linkage run's chunks (key ranges of records, bounded by record keys): kept while the run works
 * only, and never naming a record retention destroyed, even while the run works, which then reads
 * exactly the records that stay. Units are driven here, in-process, by the worker's own engine.
 */
describe('linkage chunks', () => {
  let broker: TestBroker;
  let store: LinkageStore;
  let engine: LinkageEngine;
  let retention: RetentionService;
  let stewardKey: string;
  let datasetId: string;
  /** Record i of a prefix: person i % 14's name and date of birth, seen on `seenOn(i)`. */
  const ingest = (prefix: string, count: number, seenOn: (i: number) => string) =>
    broker.gqlOk(
      stewardKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: datasetId,
        r: Array.from({ length: count }, (_, i) => {
          const p = i % PERSONS;
          return {
            stay_id: keyOf(prefix, i),
            first_name: FIRST[p % FIRST.length],
            last_name: LAST[(p * 5) % LAST.length],
            dob: `19${60 + p}-0${1 + (p % 9)}-${String(10 + p).padStart(2, '0')}`,
            seen_on: seenOn(i),
          };
        }),
      },
    );
  /** Every record key the dataset holds, in order. */
  const recordKeys = async () =>
    (await broker.query<{ k: string }>(`SELECT stay_id AS k FROM records.stays ORDER BY stay_id`)).map(
      (r) => r.k,
    );
  /** The people the records that stay were written for: their keys grouped by person, sorted. */
  const expectedPersons = (keys: readonly string[]) =>
    Array.from({ length: PERSONS }, (_, p) =>
      keys
        .filter((k) => personOf(k) === p)
        .sort()
        .join(' '),
    )
      .filter((g) => g)
      .sort();
  /** A run's normalised data: per chunk its keys, the records of its batch, and every link's ends. */
  const normalised = async (runId: string) => {
    const blobs = await broker.query<{ kind: string; a: number; b: number; data: Buffer }>(
      `SELECT kind, a, b, data FROM linkage_blob WHERE run_id = $1 ORDER BY kind, a, b`,
      [runId],
    );
    const keys = new Map<number, string[]>();
    const records = new Map<number, number>();
    const links: number[] = [];
    for (const blob of blobs) {
      if (blob.kind === 'keys') keys.set(blob.a, JSON.parse(blob.data.toString()) as string[]);
      if (blob.kind === 'records') records.set(blob.a, RecordBatch.deserialise(blob.data).size);
      if (blob.kind === 'links') {
        const l = deserialiseLinks(blob.data);
        links.push(...l.a, ...l.b);
      }
    }
    return { keys, records, links, all: [...keys.values()].flat().sort() };
  };
  /** Rows derived from records that name any of `keys`: persons, pairs for review, decisions, personKey entries. */
  const derivedNaming = (keys: readonly string[]) =>
    broker.query<{ source: string; key: string }>(
      `SELECT 'person' AS source, record_key AS key FROM linkage_person WHERE record_key = ANY ($1::text[])
       UNION ALL SELECT 'review', k FROM linkage_review_pair, unnest(ARRAY[key_a, key_b]) k WHERE k = ANY ($1::text[])
       UNION ALL SELECT 'decision', k FROM linkage_decision, unnest(ARRAY[key_a, key_b]) k WHERE k = ANY ($1::text[])
       UNION ALL SELECT 'personKey', record_key FROM person_key WHERE record_key = ANY ($1::text[])`,
      [keys],
    );

  const chunks = (runId: string) =>
    broker.query<{ chunk: number; key_after: string | null; key_last: string | null; empty: boolean }>(
      `SELECT chunk, key_after, key_last, empty FROM linkage_chunk WHERE run_id = $1 ORDER BY chunk`,
      [runId],
    );
  /** Moves a run on, doing each pending unit, until it is finished or enters `until`. */
  const drive = async (runId: string, until?: LinkagePhase): Promise<LinkageRunRow> => {
    await engine.advance(runId);
    for (let step = 0; step < 500; step++) {
      const run = (await store.getRun(runId))!;
      if (run.status !== 'RUNNING' || run.phase === until) return run;
      const phase = run.phase!;
      const pending = await store.transaction((client) => store.pendingUnits(client, runId, phase));
      if (!pending.length) await engine.advance(runId);
      for (const unit of pending) await engine.runUnit({ runId, phase, unit });
    }
    throw new Error(`linkage run ${runId} did not finish`);
  };
  /** A run's persons as the groups of record keys they link, sorted. */
  const partition = async (runId: string) => {
    const groups = new Map<string, string[]>();
    for (const { record_key, person_id } of await broker.query<{ record_key: string; person_id: string }>(
      `SELECT record_key, person_id::text FROM linkage_person WHERE run_id = $1`,
      [runId],
    )) {
      groups.set(person_id, [...(groups.get(person_id) ?? []), record_key].sort());
    }
    return [...groups.values()].map((g) => g.join(' ')).sort();
  };

  /** The worker's engine, with chunks of 10 records, 2 partitions, and `env` besides. */
  const engineWith = (env: Record<string, string>) =>
    new LinkageEngine(
      store,
      broker.app.get(LinkageQueue),
      broker.app.get(AuditService),
      broker.app.get(PersonKeyIndex),
      loadLinkageConfig({
        LINKAGE_CHUNK_RECORDS: '10',
        LINKAGE_PARTITIONS: '2',
        LINKAGE_RANDOM_PAIRS: '2000',
        ...env,
      }),
      broker.app.get(LOGGER),
    );

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'linkage_chunks' });
    store = broker.app.get(LinkageStore);
    retention = broker.app.get(RetentionService);
    engine = engineWith({});
    const agency = await broker.createAgency('Shelter');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    const dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'stays',
      title: 'Shelter stays',
      keyField: 'stay_id',
      retentionDays: 30,
      retentionField: 'seen_on',
      fields: [
        { name: 'stay_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'first_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'FIRST_NAME' },
        { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
        { name: 'seen_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    stewardKey = steward.apiKey;
    datasetId = dataset.id;
    // Record i is person i % 14's: the same name and date of birth in each of its five records.
    await ingest('R', RECORDS, (i) => (DESTROYED.has(i) ? '2001-01-01' : '2099-01-01'));
  });
  afterAll(() => broker?.close());
  // A test that failed half-way leaves no run working for the next.
  afterEach(async () => {
    for (const runId of await store.activeRunIds()) await engine.failRun(runId, 'the test ended');
  });

  it('deletes the chunks of a run that fails, in the transaction that fails it', async () => {
    const run = await store.createRun('MANUAL', null);
    expect((await drive(run.id, 'normalise')).status).toBe('RUNNING');
    expect(await chunks(run.id)).toHaveLength(7);
    await engine.failRun(run.id, 'stopped by the test');
    expect((await store.getRun(run.id))?.status).toBe('FAILED');
    expect(await chunks(run.id)).toEqual([]);
  });

  it('lowers the bounds of a running run past destroyed records, which then links what stays as an undisturbed run does', async () => {
    const run = await store.createRun('MANUAL', null);
    await drive(run.id, 'normalise');
    // Cut at every tenth key, the last chunk ending at the last key (70 records).
    expect(await chunks(run.id)).toEqual(
      Array.from({ length: 7 }, (_, c) => ({
        chunk: c,
        key_after: c ? key(c * 10 - 1) : null,
        key_last: key(c * 10 + 9),
        empty: false,
      })),
    );
    const report = await retention.run();
    expect(report.destroyed).toBe(DESTROYED.size);
    const destroyed = [...DESTROYED].map(key);
    const bounds = (await chunks(run.id)).flatMap((c) => [c.key_after, c.key_last]);
    expect(bounds.filter((b) => b !== null && destroyed.includes(b))).toEqual([]);
    // Each bound lowered to the greatest key below it that stays: the first chunk holds none (empty,
    // naming no key), the third none either (after and up to the same key).
    expect(await chunks(run.id)).toEqual([
      { chunk: 0, key_after: null, key_last: null, empty: true },
      { chunk: 1, key_after: null, key_last: key(14), empty: false },
      { chunk: 2, key_after: key(14), key_last: key(14), empty: false },
      { chunk: 3, key_after: key(14), key_last: key(39), empty: false },
      { chunk: 4, key_after: key(39), key_last: key(49), empty: false },
      { chunk: 5, key_after: key(49), key_last: key(59), empty: false },
      { chunk: 6, key_after: key(59), key_last: key(68), empty: false },
    ]);

    const finished = await drive(run.id);
    expect(finished.status).toBe('SUCCEEDED');
    expect(finished.stats?.records).toBe(RECORDS - DESTROYED.size);
    // A finished run keeps no chunk.
    expect(await chunks(run.id)).toEqual([]);
    // Every record that stays has its person, once; no destroyed record has one.
    const assigned = await broker.query<{ record_key: string }>(
      `SELECT record_key FROM linkage_person WHERE run_id = $1 ORDER BY record_key`,
      [run.id],
    );
    const staying = Array.from({ length: RECORDS }, (_, i) => i)
      .filter((i) => !DESTROYED.has(i))
      .map(key);
    expect(assigned.map((a) => a.record_key)).toEqual(staying);

    // The same persons as a run that nothing disturbed, over the records that stay (read before it
    // comes into force: the persons of the run it supersedes go then).
    const persons = await partition(run.id);
    const undisturbed = await store.createRun('MANUAL', null);
    expect((await drive(undisturbed.id)).status).toBe('SUCCEEDED');
    expect(await chunks(undisturbed.id)).toEqual([]);
    expect(persons).toEqual(await partition(undisturbed.id));
    // Which are the people the records were written for.
    expect(persons).toEqual(
      Array.from({ length: PERSONS }, (_, p) =>
        staying.filter((k) => Number(k.slice(1)) % PERSONS === p).join(' '),
      ).sort(),
    );
  });

  it('removes the records retention destroys from the normalised data of a run under way, which then writes nothing of them and links what stays as an undisturbed run does', async () => {
    // Destroyed after every chunk is normalised (2001), and again after one partition is scored (2050).
    await retention.run();
    const first = new Set([2, 3, 11, ...Array.from({ length: 10 }, (_, i) => 20 + i), 47]);
    const second = new Set([5, 33, 50, 61, 69]);
    await ingest('S', RECORDS, (i) =>
      first.has(i) ? '2001-01-01' : second.has(i) ? '2050-01-01' : '2099-01-01',
    );
    const destroyedFirst = [...first].map((i) => keyOf('S', i));
    const destroyedSecond = [...second].map((i) => keyOf('S', i));
    const run = await store.createRun('MANUAL', null);
    expect((await drive(run.id, 'estimate')).phase).toBe('estimate');
    expect((await normalised(run.id)).all).toEqual(await recordKeys());

    expect((await retention.run()).destroyed).toBe(first.size);
    // Its estimate has not read them: the run stays where it is.
    expect(await store.getRun(run.id)).toMatchObject({ phase: 'estimate', restarts: 0 });
    // The batch took them out of the run's normalised data: its chunks hold exactly the records that
    // stay, each chunk's records batch as many as its keys.
    let data = await normalised(run.id);
    expect(data.all).toEqual(await recordKeys());
    expect(data.all.filter((k) => destroyedFirst.includes(k))).toEqual([]);
    for (const [chunk, keys] of data.keys) expect(data.records.get(chunk)).toBe(keys.length);

    // Estimated, one partition scored, and destroyed again: the links follow the new numbering.
    expect((await drive(run.id, 'score')).phase).toBe('score');
    await engine.runUnit({ runId: run.id, phase: 'score', unit: 0 });
    expect((await store.unit(run.id, 'score', 0))?.done).toBe(true);
    expect((await retention.run({ now: new Date('2060-01-01') })).destroyed).toBe(second.size);
    data = await normalised(run.id);
    expect(data.all).toEqual(await recordKeys());
    expect(data.all.filter((k) => destroyedSecond.includes(k))).toEqual([]);
    // Its model learned from them: back to its estimate phase, with no link left.
    expect(await store.getRun(run.id)).toMatchObject({ phase: 'estimate', restarts: 1, model: null });
    expect(data.links).toEqual([]);

    const finished = await drive(run.id);
    expect(finished.status).toBe('SUCCEEDED');
    const staying = await recordKeys();
    expect(finished.stats?.records).toBe(staying.length);
    expect(await derivedNaming([...destroyedFirst, ...destroyedSecond])).toEqual([]);
    const assigned = await broker.query<{ record_key: string }>(
      `SELECT record_key FROM linkage_person WHERE run_id = $1 ORDER BY record_key`,
      [run.id],
    );
    expect(assigned.map((a) => a.record_key)).toEqual(staying);
    const persons = await partition(run.id);
    expect(persons).toEqual(expectedPersons(staying));
    const undisturbed = await store.createRun('MANUAL', null);
    expect((await drive(undisturbed.id)).status).toBe('SUCCEEDED');
    expect(persons).toEqual(await partition(undisturbed.id));
  });

  /** A run's model as stored: u and m per comparison level, the prior and how they were found. */
  const modelOf = async (runId: string) => (await store.getRun(runId))!.model;
  /** What a run's units left: their blobs by kind, and its persons and pairs for review. */
  const leftBy = async (runId: string) => ({
    blobs: (
      await broker.query<{ kind: string; n: number }>(
        `SELECT kind, count(*)::int AS n FROM linkage_blob WHERE run_id = $1 GROUP BY kind ORDER BY kind`,
        [runId],
      )
    ).map((r) => `${r.kind}:${r.n}`),
    persons: (
      await broker.query<{ n: number }>(`SELECT count(*)::int AS n FROM linkage_person WHERE run_id = $1`, [
        runId,
      ])
    )[0].n,
    review: (
      await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM linkage_review_pair WHERE run_id = $1`,
        [runId],
      )
    )[0].n,
  });
  /** The units of a phase: whether each is done, and its attempts. */
  const unitsOfPhase = (runId: string, phase: LinkagePhase) =>
    broker.query<{ unit: number; done: boolean; attempts: number }>(
      `SELECT unit, done_at IS NOT NULL AS done, attempts FROM linkage_unit
        WHERE run_id = $1 AND phase = $2 ORDER BY unit`,
      [runId, phase],
    );
  /** The `details` of a run's LINKAGE_RUN audit event. */
  const auditedRun = async (runId: string) =>
    (
      await broker.query<{ details: Record<string, unknown> }>(
        `SELECT details FROM audit_event WHERE action = 'LINKAGE_RUN' AND details ->> 'runId' = $1`,
        [runId],
      )
    ).map((e) => e.details);
  /**
   * Ingests `count` records of a prefix, those at `doomed` seen on `doomedOn` (past retention then)
   * with names of their own (people nobody else is), the others on 2099-01-01: returns the doomed keys.
   */
  const ingestDoomed = async (
    prefix: string,
    count: number,
    doomed: ReadonlySet<number>,
    doomedOn: string,
  ) => {
    await ingest(prefix, count, (i) => (doomed.has(i) ? doomedOn : '2099-01-01'));
    // Their own names, so that the model learned with them (u of the names, term frequencies) is not
    // the one learned without them.
    await broker.query(
      `UPDATE records.stays SET first_name = 'Zephyrine' || right(stay_id, 2), last_name = 'Quillfeather'
        WHERE stay_id = ANY ($1::text[])`,
      [[...doomed].map((i) => keyOf(prefix, i))],
    );
    return [...doomed].map((i) => keyOf(prefix, i));
  };
  /**
   * The run ends as an undisturbed run over the records that stay ends, model included: the same
   * model, statistics, weight histogram and persons, and no row derived from a destroyed record.
   */
  const expectAsUndisturbed = async (run: LinkageRunRow, destroyed: readonly string[]) => {
    expect(run.status).toBe('SUCCEEDED');
    expect(await derivedNaming(destroyed)).toEqual([]);
    const staying = await recordKeys();
    expect(run.stats?.records).toBe(staying.length);
    const persons = await partition(run.id);
    expect(persons).toEqual(expectedPersons(staying));
    const undisturbed = await store.createRun('MANUAL', null);
    const clean = await drive(undisturbed.id);
    expect(clean.status).toBe('SUCCEEDED');
    expect(clean.restarts).toBe(0);
    expect(run.model).toEqual(clean.model);
    // Its statistics but the CPU time the units took.
    const counted = ({ scoreCpuMs: _cpu, ...stats }: Record<string, unknown>) => stats;
    expect(counted(run.stats!)).toEqual(counted(clean.stats!));
    expect(run.weight_histogram).toEqual(clean.weight_histogram);
    expect(persons).toEqual(await partition(undisturbed.id));
  };

  it('sends a run back to its estimate phase when retention destroys records its estimate read: it learns its model again from what stays, as an undisturbed run does', async () => {
    await retention.run({ now: new Date('2096-01-01') });
    const destroyed = await ingestDoomed('V', 30, new Set([1, 4, 8, 9, 15, 22, 23, 29]), '2096-06-01');
    const run = await store.createRun('MANUAL', null);
    const estimated = await drive(run.id, 'score');
    expect(estimated.phase).toBe('score');
    const learned = estimated.model;
    expect(learned).not.toBeNull();
    const chunkCount = estimated.chunks!;
    expect(estimated.units_done).toBe(1 + chunkCount + 1);
    expect((await leftBy(run.id)).blobs).toContain('tf:1');

    expect((await retention.run({ now: new Date('2096-08-01') })).destroyed).toBe(destroyed.length);
    // Back in its estimate phase, in the batch's transaction: no model, no term frequencies, the
    // estimate unit to be done again (its attempt kept) and counted done no more.
    const back = (await store.getRun(run.id))!;
    expect(back).toMatchObject({ status: 'RUNNING', phase: 'estimate', model: null, restarts: 1 });
    expect(back.units_done).toBe(1 + chunkCount);
    expect(await unitsOfPhase(run.id, 'estimate')).toEqual([{ unit: 0, done: false, attempts: 1 }]);
    expect((await leftBy(run.id)).blobs.filter((b) => /^(tf|links|review):/.test(b))).toEqual([]);
    // The operator sees it go back.
    const { linkageRun } = await broker.gqlOk<{ linkageRun: { restarts: number; progress: number } }>(
      broker.operatorKey,
      `query($id: ID!) { linkageRun(id: $id) { restarts progress } }`,
      { id: run.id },
    );
    expect(linkageRun).toEqual({ restarts: 1, progress: (1 + chunkCount) / back.units_total! });

    // Moved on, its estimate is a new job: BullMQ would take no other under the first one's id
    // (kept a day once completed).
    await engine.advance(run.id);
    const job = await broker.app.get(LinkageQueue).queue.getJob(`${run.id}.estimate.0.1`);
    expect(job?.data).toEqual({ runId: run.id, phase: 'estimate', unit: 0, round: 1 });

    const finished = await drive(run.id);
    expect(await unitsOfPhase(run.id, 'estimate')).toEqual([{ unit: 0, done: true, attempts: 2 }]);
    expect(finished.model).not.toEqual(learned);
    expect(await auditedRun(run.id)).toEqual([expect.objectContaining({ status: 'SUCCEEDED', restarts: 1 })]);
    await expectAsUndisturbed(finished, destroyed);
  });

  it('sends a run back from its score phase: the links scored go, a score unit in flight commits nothing, and jobs of the phase gone back before do nothing', async () => {
    await retention.run({ now: new Date('2097-01-01') });
    const destroyed = await ingestDoomed('W', 30, new Set([0, 3, 11, 12, 13, 27]), '2097-06-01');
    const run = await store.createRun('MANUAL', null);
    expect((await drive(run.id, 'score')).phase).toBe('score');
    await engine.runUnit({ runId: run.id, phase: 'score', unit: 0 });
    expect((await leftBy(run.id)).blobs).toEqual(expect.arrayContaining(['links:1', 'review:1', 'tf:1']));

    // Partition 1's unit reads the model and its records, then waits a second before it commits:
    // the batch sends the run back meanwhile.
    const paused = engineWith({ LINKAGE_UNIT_PAUSE_MS: '1000' });
    const inFlight = paused.runUnit({ runId: run.id, phase: 'score', unit: 1 });
    await sleep(300);
    expect((await retention.run({ now: new Date('2097-08-01') })).destroyed).toBe(destroyed.length);
    await inFlight;
    expect(await store.getRun(run.id)).toMatchObject({ phase: 'estimate', model: null, restarts: 1 });
    // Nothing scored is left, and the unit in flight wrote nothing.
    const left = await leftBy(run.id);
    expect(left.blobs.filter((b) => /^(tf|links|review):/.test(b))).toEqual([]);
    expect([left.persons, left.review]).toEqual([0, 0]);
    expect(await unitsOfPhase(run.id, 'score')).toEqual([
      { unit: 0, done: false, attempts: 1 },
      { unit: 1, done: false, attempts: 1 },
    ]);
    // A job of a score unit from before (still queued, or retried) does nothing: the run is not
    // scoring yet.
    await engine.runUnit({ runId: run.id, phase: 'score', unit: 0 });
    expect(await unitsOfPhase(run.id, 'score')).toEqual([
      { unit: 0, done: false, attempts: 1 },
      { unit: 1, done: false, attempts: 1 },
    ]);
    expect((await store.getRun(run.id))!.phase).toBe('estimate');

    const finished = await drive(run.id);
    // Each partition's unit done twice in all: before (partition 1's in flight), and after.
    expect(await unitsOfPhase(run.id, 'score')).toEqual([
      { unit: 0, done: true, attempts: 2 },
      { unit: 1, done: true, attempts: 2 },
    ]);
    expect(await auditedRun(run.id)).toEqual([expect.objectContaining({ status: 'SUCCEEDED', restarts: 1 })]);
    await expectAsUndisturbed(finished, destroyed);
  });

  it('sends a run back from its cluster phase, its persons deleted; and leaves a run alone for records it never read', async () => {
    await retention.run({ now: new Date('2098-01-01') });
    const destroyed = await ingestDoomed('X', 20, new Set([2, 5, 6, 17]), '2098-06-01');
    const run = await store.createRun('MANUAL', null);
    expect((await drive(run.id, 'cluster')).phase).toBe('cluster');
    const learned = await modelOf(run.id);
    // Records ingested after the run read its chunks are not the run's: destroying them changes
    // nothing of it.
    const unread = await ingestDoomed('Y', 5, new Set([0, 1, 2, 3, 4]), '2098-03-01');
    expect((await retention.run({ now: new Date('2098-04-01') })).destroyed).toBe(unread.length);
    expect(await store.getRun(run.id)).toMatchObject({ phase: 'cluster', restarts: 0 });
    expect(await modelOf(run.id)).toEqual(learned);

    // The cluster unit done, the run not yet finished (its worker died before moving it on).
    const clusterUnit = new ClusterPhase({
      store,
      config: loadLinkageConfig({}),
      logger: broker.app.get(LOGGER),
    });
    expect(
      await clusterUnit.execute((await store.getRun(run.id))!, 0, await store.destructions(run.id)),
    ).toBe(true);
    expect((await leftBy(run.id)).persons).toBeGreaterThan(0);
    expect((await retention.run({ now: new Date('2098-08-01') })).destroyed).toBe(destroyed.length);
    expect(await store.getRun(run.id)).toMatchObject({
      status: 'RUNNING',
      phase: 'estimate',
      model: null,
      restarts: 1,
    });
    expect(await leftBy(run.id)).toMatchObject({ persons: 0, review: 0 });
    expect(await unitsOfPhase(run.id, 'cluster')).toEqual([{ unit: 0, done: false, attempts: 0 }]);
    await expectAsUndisturbed(await drive(run.id), [...destroyed, ...unread]);
  });

  it('does a unit again when retention destroyed records of its run after it read them', async () => {
    // Nothing else is past retention by 2080.
    await retention.run({ now: new Date('2080-01-01') });
    const doomed = new Set([2, 7]);
    await ingest('T', 10, (i) => (doomed.has(i) ? '2070-01-01' : '2099-01-01'));
    const destroyed = [...doomed].map((i) => keyOf('T', i));
    const run = await store.createRun('MANUAL', null);
    await drive(run.id, 'normalise');
    // The last chunk holds the T records: its unit reads them, then waits a second before it commits.
    const last = (await chunks(run.id)).at(-1)!;
    const paused = engineWith({ LINKAGE_UNIT_PAUSE_MS: '1000' });
    const unit = paused.runUnit({ runId: run.id, phase: 'normalise', unit: last.chunk });
    await sleep(300);
    expect((await retention.run({ now: new Date('2080-01-01') })).destroyed).toBe(doomed.size);
    await unit;
    expect((await store.unit(run.id, 'normalise', last.chunk))?.done).toBe(true);
    const keys = (await normalised(run.id)).keys.get(last.chunk)!;
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => destroyed.includes(k))).toEqual([]);
    expect((await drive(run.id)).status).toBe('SUCCEEDED');
    expect(await derivedNaming(destroyed)).toEqual([]);
    expect((await partition(run.id)).flatMap((g) => g.split(' ')).sort()).toEqual(await recordKeys());
  });

  it('orders the cutting of chunks with a retention batch by LINKAGE_CHUNKS_LOCK: no bound names a destroyed key, whichever waits', async () => {
    await retention.run({ now: new Date('2095-01-01') });
    const doomed = Array.from({ length: 20 }, (_, i) => keyOf('U', i));
    await ingest('U', 25, (i) => (i < 20 ? '2090-01-01' : '2099-01-01'));
    const run = await store.createRun('MANUAL', null);
    await engine.advance(run.id);
    const before = (await recordKeys()).length;
    let retained: Promise<unknown> = Promise.resolve();
    let prepared: Promise<unknown> = Promise.resolve();
    await broker.app.get(Database).transaction(async (tx) => {
      // Held as a retention batch holds it: the prepare unit's commit waits, and so does the batch
      // that starts after it (its DELETE done).
      await tx.query(`SELECT pg_advisory_xact_lock($1)`, [LINKAGE_CHUNKS_LOCK]);
      prepared = engine.runUnit({ runId: run.id, phase: 'prepare', unit: 0 });
      await sleep(300);
      retained = retention.run({ now: new Date('2095-01-01') });
      await sleep(300);
      expect((await store.unit(run.id, 'prepare', 0))?.done).toBe(false);
      expect(await chunks(run.id)).toEqual([]);
    });
    await Promise.all([prepared, retained]);
    // The unit cut its chunks first, while the batch's DELETE was not committed (it counted the
    // destroyed records), and the batch lowered the bounds that named them.
    const [{ stats }] = await broker.query<{ stats: { records: number } }>(
      `SELECT stats FROM linkage_unit WHERE run_id = $1 AND phase = 'prepare'`,
      [run.id],
    );
    expect(stats.records).toBe(before);
    const bounds = (await chunks(run.id)).flatMap((c) => [c.key_after, c.key_last]);
    expect(bounds.filter((b) => b !== null && doomed.includes(b))).toEqual([]);
    expect((await drive(run.id)).status).toBe('SUCCEEDED');
    expect(await derivedNaming(doomed)).toEqual([]);
    expect((await partition(run.id)).flatMap((g) => g.split(' ')).sort()).toEqual(await recordKeys());
  });

  it('refuses a decision on a pair that a retention batch deleted while the decision waited for the lock (NOT_FOUND, nothing written)', async () => {
    const { id: run } = await store.createRun('MANUAL', null);
    expect((await drive(run)).status).toBe('SUCCEEDED');
    const [a, b] = await recordKeys();
    const [{ pair }] = await broker.query<{ pair: number }>(
      `INSERT INTO linkage_review_pair (run_id, pair, dataset_a, key_a, dataset_b, key_b, levels, weight)
       SELECT $1, coalesce(max(pair), 0) + 1, $2, $3, $2, $4, '[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]', 3.5
         FROM linkage_review_pair WHERE run_id = $1
       RETURNING pair`,
      [run, datasetId, a, b],
    );
    const decisions = () =>
      broker.query(`SELECT key_a, key_b FROM linkage_decision WHERE key_a = ANY ($1::text[])`, [[a, b]]);
    let decided: ReturnType<TestBroker['gql']> | undefined;
    await broker.app.get(Database).transaction(async (tx) => {
      // As a retention batch that destroys record `a` does: the lock, then its pairs and decisions.
      await tx.query(`SELECT pg_advisory_xact_lock($1)`, [LINKAGE_CHUNKS_LOCK]);
      decided = broker.gql(
        broker.operatorKey,
        `mutation($id: ID!, $pair: Int!) { decideLinkagePair(runId: $id, pair: $pair, same: true) { pair } }`,
        { id: run, pair },
      );
      await sleep(300);
      expect(await decisions()).toEqual([]);
      await tx.query(`DELETE FROM linkage_review_pair WHERE run_id = $1 AND pair = $2`, [run, pair]);
      await tx.query(`DELETE FROM linkage_decision WHERE key_a = $1 OR key_b = $1`, [a]);
    });
    const result = (await decided)!;
    expect(result.errors?.map((e: { extensions?: { code?: string } }) => e.extensions?.code)).toEqual([
      'NOT_FOUND',
    ]);
    expect(await decisions()).toEqual([]);
  });

  it('deletes the chunks that runs finished before left behind (the migration)', async () => {
    const runs: Record<string, string> = {};
    for (const status of ['SUCCEEDED', 'FAILED', 'RUNNING']) {
      const [run] = await broker.query<{ id: string }>(
        `INSERT INTO linkage_run (status, trigger) VALUES ($1, 'MANUAL') RETURNING id`,
        [status],
      );
      runs[status] = run.id;
      await broker.query(
        `INSERT INTO linkage_chunk (run_id, chunk, dataset_no, key_after, key_last)
         VALUES ($1, 0, 0, NULL, 'R010'), ($1, 1, 0, 'R010', NULL)`,
        [run.id],
      );
    }
    await broker.query(`ALTER TABLE linkage_chunk DROP COLUMN empty`);
    const runner = broker.app.get(DataSource).createQueryRunner();
    try {
      await new LinkageChunksFinished1766200000000().up(runner);
    } finally {
      await runner.release();
    }
    expect(
      await broker.query(`SELECT run_id, chunk, empty FROM linkage_chunk ORDER BY run_id, chunk`),
    ).toEqual([
      { run_id: runs.RUNNING, chunk: 0, empty: false },
      { run_id: runs.RUNNING, chunk: 1, empty: false },
    ]);
  });
});
