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
import { AuditService } from '@broker/audit';
import { RetentionService } from '@broker/registry';
import { TestBroker } from '@broker/testing';

const FIRST = [
  'Ada',
  'Boris',
  'Celia',
  'Dmitri',
  'Edna',
  'Fergus',
  'Gita',
  'Hamish',
  'Ines',
  'Jonas',
  'Kofi',
  'Lena',
];
const LAST = [
  'Okafor',
  'Lindqvist',
  'Moreau',
  'Novak',
  'Petrov',
  'Quintero',
  'Rossi',
  'Sato',
  'Tanaka',
  'Ueda',
];
const PEOPLE = 30;
const KEPT = '2099-01-01';
const PAST = '2001-01-01';

interface Client_ {
  client_id: string;
  first_name?: string;
  last_name?: string;
  dob?: string;
  ssn?: string;
  zip?: string;
  seen_on: string;
}

/**
 * Three records of one person for each of 30 people: names and date of birth; the same with an SSN
 * and a postal code; the SSN and postal code alone. And the chain: A (names and date of birth) and
 * C (SSN and postal code) share no identifier, so they are never compared; B has both, and links
 * each. Linked, A, B and C are one person; without B, A and C are two.
 */
function clients(): Client_[] {
  const rows: Client_[] = [];
  for (let p = 0; p < PEOPLE; p++) {
    const who = {
      first_name: FIRST[p % FIRST.length],
      last_name: LAST[(p * 5) % LAST.length],
      dob: `19${50 + (p % 40)}-${String(1 + (p % 12)).padStart(2, '0')}-${String(1 + ((p * 7) % 28)).padStart(2, '0')}`,
    };
    const ids = { ssn: String(100_000_000 + p * 7919), zip: String(10_000 + p * 13) };
    const id = (n: number) => `P${String(p).padStart(2, '0')}-${n}`;
    rows.push({ client_id: id(1), ...who, seen_on: KEPT });
    rows.push({ client_id: id(2), ...who, ...ids, seen_on: KEPT });
    rows.push({ client_id: id(3), ...ids, seen_on: KEPT });
  }
  const wilhelmina = { first_name: 'Wilhelmina', last_name: 'Zabrowski', dob: '1955-03-21' };
  const ids = { ssn: '234-56-7891', zip: '97201' };
  rows.push({ client_id: 'X-A', ...wilhelmina, seen_on: KEPT });
  rows.push({ client_id: 'X-B', ...wilhelmina, ...ids, seen_on: PAST });
  rows.push({ client_id: 'X-C', ...ids, seen_on: KEPT });
  return rows;
}

/**
 * Retention destroys records with what linkage derived from them, the run in force's grouping of the
 * records that stay included: a batch that destroys records the run in force had assigned to persons
 * requests a run (trigger RETENTION) in its own transaction, which reads only the records that stay
 * and replaces those persons. Runs are driven here, in-process, by the worker's own engine.
 */
describe('retention and the linkage run in force', () => {
  let broker: TestBroker;
  let store: LinkageStore;
  let engine: LinkageEngine;
  let queue: LinkageQueue;
  let retention: RetentionService;
  let stewardKey: string;
  let clientsId: string;
  let notesId: string;

  const ingest = (datasetId: string, rows: object[]) =>
    broker.gqlOk(
      stewardKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: rows },
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
  /** The run in force's person of each of `keys` (clients), by key; a key without one is left out. */
  const personsInForce = async (...keys: string[]) =>
    Object.fromEntries(
      (
        await broker.query<{ record_key: string; person_id: string }>(
          `SELECT p.record_key, p.person_id::text FROM linkage_person p
             JOIN linkage_state s ON s.id = 1 AND p.run_id = s.current_run_id
            WHERE p.dataset_id = $1 AND p.record_key = ANY ($2::text[])`,
          [clientsId, keys],
        )
      ).map((r) => [r.record_key, r.person_id]),
    );
  const runInForce = async () =>
    (await broker.query<{ id: string | null }>(`SELECT current_run_id AS id FROM linkage_state`))[0].id;
  const runs = () =>
    broker.query<{ id: string; trigger: string; status: string }>(
      `SELECT id, trigger, status FROM linkage_run ORDER BY created_at, id`,
    );
  /** The RECORDS_DESTROYED events after `seq`: dataset, count and the run they name. */
  const destroyedEvents = (after: number) =>
    broker.query<{ dataset_id: string; row_count: number; linkage_run: string | null }>(
      `SELECT dataset_id, row_count, details ->> 'linkageRun' AS linkage_run FROM audit_event
        WHERE action = 'RECORDS_DESTROYED' AND seq > $1 ORDER BY seq`,
      [after],
    );
  /** Sets a client record past retention. */
  const expire = (key: string) =>
    broker.query(`UPDATE records.clients SET seen_on = $2 WHERE client_id = $1`, [key, PAST]);

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'retention_linkage' });
    store = broker.app.get(LinkageStore);
    queue = broker.app.get(LinkageQueue);
    retention = broker.app.get(RetentionService);
    engine = new LinkageEngine(
      store,
      queue,
      broker.app.get(AuditService),
      broker.app.get(PersonKeyIndex),
      loadLinkageConfig({
        LINKAGE_CHUNK_RECORDS: '40',
        LINKAGE_PARTITIONS: '2',
        LINKAGE_RANDOM_PAIRS: '2000',
      }),
      broker.app.get(LOGGER),
    );
    const agency = await broker.createAgency('Shelter');
    const steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    stewardKey = steward.apiKey;
    const seen = { name: 'seen_on', type: 'DATE', classification: 'NON_SENSITIVE' };
    clientsId = (
      await broker.registerDataset(stewardKey, {
        slug: 'clients',
        title: 'Shelter clients',
        keyField: 'client_id',
        retentionDays: 30,
        retentionField: 'seen_on',
        fields: [
          { name: 'client_id', type: 'STRING', classification: 'NON_SENSITIVE' },
          { name: 'first_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'FIRST_NAME' },
          { name: 'last_name', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'LAST_NAME' },
          { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER', identity: 'DATE_OF_BIRTH' },
          { name: 'ssn', type: 'STRING', classification: 'DIRECT_IDENTIFIER', identity: 'SSN' },
          { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER', identity: 'ZIP' },
          seen,
        ],
      })
    ).id;
    // No identity field: linkage never reads it.
    notesId = (
      await broker.registerDataset(stewardKey, {
        slug: 'notes',
        title: 'Shelter notes',
        keyField: 'note_id',
        retentionDays: 30,
        retentionField: 'seen_on',
        fields: [{ name: 'note_id', type: 'STRING', classification: 'NON_SENSITIVE' }, seen],
      })
    ).id;
  });
  afterAll(() => broker?.close());
  afterEach(() => jest.restoreAllMocks());

  it('requests no run when linkage never ran: no person of a run in force was destroyed', async () => {
    await ingest(clientsId, [{ client_id: 'Z-0', first_name: 'Ada', seen_on: PAST }]);
    const seq = await broker.auditHeadSeq();
    const report = await retention.run();
    expect(report.destroyed).toBe(1);
    expect(report.linkageRuns).toEqual([]);
    expect(await runs()).toEqual([]);
    expect(await destroyedEvents(seq)).toEqual([{ dataset_id: clientsId, row_count: 1, linkage_run: null }]);
  });

  it('destroys a record that alone joined two others, and the run it requests parts them', async () => {
    await ingest(clientsId, clients());
    const first = await store.createRun('MANUAL', null);
    expect((await drive(first.id)).status).toBe('SUCCEEDED');
    expect(await runInForce()).toBe(first.id);
    const linked = await personsInForce('X-A', 'X-B', 'X-C');
    expect(Object.keys(linked).sort()).toEqual(['X-A', 'X-B', 'X-C']);
    expect(new Set(Object.values(linked)).size).toBe(1);

    const seq = await broker.auditHeadSeq();
    const advance = jest.spyOn(queue, 'advance');
    const report = await retention.run();
    expect(report.destroyed).toBe(1);
    expect(report.linkageRuns).toHaveLength(1);
    const [runId] = report.linkageRuns;
    // Requested in the batch's transaction, named by its event, and enqueued after it committed.
    expect(await runs()).toEqual([
      { id: first.id, trigger: 'MANUAL', status: 'SUCCEEDED' },
      { id: runId, trigger: 'RETENTION', status: 'QUEUED' },
    ]);
    expect(await destroyedEvents(seq)).toEqual([{ dataset_id: clientsId, row_count: 1, linkage_run: runId }]);
    expect(advance.mock.calls).toEqual([[runId]]);
    // Until it succeeds, the run in force keeps A and C together, B gone from it.
    const stale = await personsInForce('X-A', 'X-B', 'X-C');
    expect(Object.keys(stale).sort()).toEqual(['X-A', 'X-C']);
    expect(stale['X-A']).toBe(stale['X-C']);

    const run = await broker.gqlOk<{ linkageRun: { trigger: string; status: string } }>(
      broker.operatorKey,
      `query($id: ID!) { linkageRun(id: $id) { trigger status } }`,
      { id: runId },
    );
    expect(run.linkageRun).toEqual({ trigger: 'RETENTION', status: 'QUEUED' });

    const finished = await drive(runId);
    expect(finished.status).toBe('SUCCEEDED');
    expect(finished.previous_run_id).toBe(first.id);
    expect(finished.stats?.records).toBe(PEOPLE * 3 + 2);
    expect(await runInForce()).toBe(runId);
    const parted = await personsInForce('X-A', 'X-B', 'X-C');
    expect(Object.keys(parted).sort()).toEqual(['X-A', 'X-C']);
    expect(parted['X-A']).not.toBe(parted['X-C']);
    // Audited as every run is, with what started it.
    const [event] = await broker.query<{ trigger: string; status: string; run_id: string }>(
      `SELECT details ->> 'trigger' AS trigger, details ->> 'status' AS status, details ->> 'runId' AS run_id
         FROM audit_event WHERE action = 'LINKAGE_RUN' AND seq > $1 ORDER BY seq`,
      [seq],
    );
    expect(event).toEqual({ trigger: 'RETENTION', status: 'SUCCEEDED', run_id: runId });
  });

  it('requests no run for records the run in force never assigned: of a dataset it does not read, or ingested after it', async () => {
    await ingest(notesId, [
      { note_id: 'N1', seen_on: PAST },
      { note_id: 'N2', seen_on: PAST },
    ]);
    await ingest(clientsId, [{ client_id: 'Z-1', first_name: 'Ada', last_name: 'Okafor', seen_on: PAST }]);
    const before = await runs();
    const seq = await broker.auditHeadSeq();
    const report = await retention.run();
    expect(report.destroyed).toBe(3);
    expect(report.linkageRuns).toEqual([]);
    expect(await runs()).toEqual(before);
    expect(await destroyedEvents(seq)).toEqual([
      { dataset_id: clientsId, row_count: 1, linkage_run: null },
      { dataset_id: notesId, row_count: 2, linkage_run: null },
    ]);
  });

  it('joins the run waiting rather than adding one, and waits for the run that works', async () => {
    const waiting = await store.createRun('MANUAL', null);
    const count = (await runs()).length;
    await expire('P00-1');
    let seq = await broker.auditHeadSeq();
    let report = await retention.run();
    expect(report).toMatchObject({ destroyed: 1, linkageRuns: [waiting.id] });
    expect((await runs()).length).toBe(count);
    expect((await store.getRun(waiting.id))?.trigger).toBe('MANUAL');
    expect(await destroyedEvents(seq)).toEqual([
      { dataset_id: clientsId, row_count: 1, linkage_run: waiting.id },
    ]);

    // That run working, a destruction requests the next, which waits for it.
    expect((await drive(waiting.id, 'estimate')).status).toBe('RUNNING');
    await expire('P01-1');
    seq = await broker.auditHeadSeq();
    report = await retention.run();
    expect(report.linkageRuns).toHaveLength(1);
    const [next] = report.linkageRuns;
    expect(next).not.toBe(waiting.id);
    expect(await store.getRun(next)).toMatchObject({ trigger: 'RETENTION', status: 'QUEUED' });
    await engine.advance(next);
    expect((await store.getRun(next))?.status).toBe('QUEUED');
    expect((await drive(waiting.id)).status).toBe('SUCCEEDED');
    // The run that worked read neither destroyed record; the next starts when it ends.
    expect((await store.getRun(waiting.id))?.stats?.records).toBe(PEOPLE * 3);
    expect((await store.getRun(next))?.status).toBe('RUNNING');
    expect((await drive(next)).status).toBe('SUCCEEDED');
    expect(await runInForce()).toBe(next);
    expect(await destroyedEvents(seq)).toEqual([{ dataset_id: clientsId, row_count: 1, linkage_run: next }]);
  });

  it('keeps the destruction when the run cannot be enqueued, and the watchdog starts the run', async () => {
    await expire('P02-1');
    const advance = jest.spyOn(queue, 'advance').mockRejectedValue(new Error('Redis is down'));
    const seq = await broker.auditHeadSeq();
    const report = await retention.run();
    expect(report.destroyed).toBe(1);
    expect(report.linkageRuns).toHaveLength(1);
    const [runId] = report.linkageRuns;
    expect(advance.mock.calls).toEqual([[runId]]);
    // The batch committed: the record, its person and its event are as after any destruction.
    expect(await broker.query(`SELECT client_id FROM records.clients WHERE client_id = 'P02-1'`)).toEqual([]);
    expect(await personsInForce('P02-1')).toEqual({});
    expect(await destroyedEvents(seq)).toEqual([{ dataset_id: clientsId, row_count: 1, linkage_run: runId }]);
    const [schedule] = await broker.query<{ last_error: string | null; last_destroyed: string }>(
      `SELECT last_error, last_destroyed::text FROM retention_schedule`,
    );
    expect(schedule).toEqual({ last_error: null, last_destroyed: '1' });
    expect(await store.getRun(runId)).toMatchObject({ trigger: 'RETENTION', status: 'QUEUED' });

    // The run is in PostgreSQL: the workers' watchdog moves it on.
    advance.mockRestore();
    await engine.driveActiveRuns();
    expect((await store.getRun(runId))?.status).toBe('RUNNING');
    expect((await drive(runId)).status).toBe('SUCCEEDED');
    expect(await runInForce()).toBe(runId);
  });
});
