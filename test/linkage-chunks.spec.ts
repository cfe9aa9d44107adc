import { DataSource } from 'typeorm';
import { AuditService } from '@broker/audit';
import { LOGGER } from '@broker/core';
import type { LinkagePhase } from '@broker/jobs';
import {
  LinkageEngine,
  LinkageQueue,
  type LinkageRunRow,
  LinkageStore,
  PersonKeyIndex,
  loadLinkageConfig,
} from '@broker/linkage';
import { RetentionService } from '@broker/registry';
import { TestBroker } from '@broker/testing';
import { LinkageChunksFinished1766200000000 } from '../libs/core/src/database/migrations/1766200000000-linkage-chunks-finished';

const FIRST = ['Ada', 'Boris', 'Celia', 'Dmitri', 'Edna', 'Fergus', 'Gita', 'Hamish', 'Ines', 'Jonas'];
const LAST = ['Okafor', 'Lindqvist', 'Moreau', 'Novak', 'Petrov', 'Quintero', 'Rossi', 'Sato', 'Tanaka'];
const PERSONS = 14;
const RECORDS = 70;
const key = (i: number) => `R${String(i).padStart(3, '0')}`;
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

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'linkage_chunks' });
    store = broker.app.get(LinkageStore);
    retention = broker.app.get(RetentionService);
    const config = loadLinkageConfig({
      LINKAGE_CHUNK_RECORDS: '10',
      LINKAGE_PARTITIONS: '2',
      LINKAGE_RANDOM_PAIRS: '2000',
    });
    engine = new LinkageEngine(
      store,
      broker.app.get(LinkageQueue),
      broker.app.get(AuditService),
      broker.app.get(PersonKeyIndex),
      config,
      broker.app.get(LOGGER),
    );
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
    // Record i is person i % 14's: the same name and date of birth in each of its five records.
    const records = Array.from({ length: RECORDS }, (_, i) => {
      const p = i % PERSONS;
      return {
        stay_id: key(i),
        first_name: FIRST[p % FIRST.length],
        last_name: LAST[(p * 5) % LAST.length],
        dob: `19${60 + p}-0${1 + (p % 9)}-${String(10 + p).padStart(2, '0')}`,
        seen_on: DESTROYED.has(i) ? '2001-01-01' : '2099-01-01',
      };
    });
    await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: records },
    );
  });
  afterAll(() => broker?.close());

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
