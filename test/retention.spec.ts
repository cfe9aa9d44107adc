import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { DataSource } from 'typeorm';
import { LOGGER } from '@broker/core';
import { QueueName, type RetentionJob } from '@broker/jobs';
import { RetentionScheduler, RetentionService } from '@broker/registry';
import { TestBroker } from '@broker/testing';

const REPORT = `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) { action fields } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { title retentionDays retentionField } }`;
const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString().slice(0, 10);

/** Retention: records past it are destroyed by a batched, resumable job, with what was derived from them. */
describe('retention', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let steward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };
  /** The agreement that releases the cases to research. */
  let agreementId: string;
  let retention: RetentionService;

  const records = (prefix: string, n: number, released: string | null) =>
    Array.from({ length: n }, (_, i) => ({
      case_id: `${prefix}${i}`,
      person_id: `${prefix}-P${i}`,
      program: i % 2 ? 'JOBS' : 'HOUSING',
      released_on: released,
    }));
  const ingest = (rows: Record<string, unknown>[]) =>
    broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: rows },
    );
  const keys = async () =>
    (
      await broker.query<{ case_id: string }>(`SELECT case_id FROM records.probation_cases ORDER BY case_id`)
    ).map((r) => r.case_id);
  const destroyedEvents = async () =>
    (
      await broker.query<{ row_count: number }>(
        `SELECT row_count FROM audit_event WHERE action = 'RECORDS_DESTROYED' ORDER BY seq`,
      )
    ).map((e) => e.row_count);

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'retention' });
    retention = broker.app.get(RetentionService);
    ({
      providerAgency: cbo,
      recipientAgency: research,
      providerSteward: steward,
      recipientSteward: researchSteward,
      analyst,
    } = await broker.sharingParties('Probation', 'Research Office', 'RECIDIVISM_EVALUATION'));
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'probation_cases',
      title: 'Probation cases',
      keyField: 'case_id',
      subjectField: 'person_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'person_id', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'program', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'released_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    agreementId = await broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'Cases for evaluation',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [{ name: 'case_id' }, { name: 'program' }, { name: 'released_on' }],
          minCellSize: 1,
        },
      ],
    });
  });
  afterAll(() => broker.close());

  it('sets retention at registration or with updateDataset, on a DATE or DATETIME field only', async () => {
    const register = (input: Record<string, unknown>) =>
      broker.gql(
        steward.apiKey,
        `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { id retentionDays } }`,
        {
          input: {
            slug: 'other_cases',
            title: 'Other',
            keyField: 'id',
            fields: [
              { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
              { name: 'closed_at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
            ],
            ...input,
          },
        },
      );
    expect((await register({ retentionDays: 30 })).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect((await register({ retentionDays: 30, retentionField: 'id' })).errors?.[0].extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    expect((await register({ retentionField: 'closed_at' })).errors?.[0].extensions?.code).toBe(
      'BAD_USER_INPUT',
    );
    expect(
      (await register({ retentionDays: 0, retentionField: 'closed_at' })).errors?.[0].extensions?.code,
    ).toBe('BAD_USER_INPUT');
    const ok = await register({ retentionDays: 90, retentionField: 'closed_at' });
    expect(ok.data).toEqual({ registerDataset: { id: expect.any(String), retentionDays: 90 } });

    expect(
      (await broker.gql(steward.apiKey, UPDATE, { id: dataset.id, input: { retentionDays: 30 } })).errors?.[0]
        .extensions?.code,
    ).toBe('BAD_USER_INPUT');
    expect(
      (await broker.gql(analyst.apiKey, UPDATE, { id: dataset.id, input: { title: 'x' } })).errors?.[0]
        .extensions?.code,
    ).toBe('FORBIDDEN');
    expect(
      (await broker.gql(researchSteward.apiKey, UPDATE, { id: dataset.id, input: { title: 'x' } }))
        .errors?.[0].extensions?.code,
    ).toBe('NOT_FOUND');
    const updated = await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: {
        title: 'Probation cases (kept 30 days after release)',
        retentionDays: 30,
        retentionField: 'released_on',
      },
    });
    expect(updated.updateDataset).toEqual({
      title: 'Probation cases (kept 30 days after release)',
      retentionDays: 30,
      retentionField: 'released_on',
    });
    const [event] = await broker.query<{ action: string }>(
      `SELECT action FROM audit_event WHERE dataset_id = $1 ORDER BY seq DESC LIMIT 1`,
      [dataset.id],
    );
    expect(event.action).toBe('DATASET_UPDATED');
  });

  it('destroys records past retention in audited batches, with their linkage; keeps the rest and what reports need', async () => {
    await ingest([
      ...records('OLD', 7, daysAgo(400)),
      ...records('NEW', 4, daysAgo(2)),
      ...records('NUL', 2, null),
    ]);
    // Linkage's person assignments, as a finished run leaves them: OLDi is person i + 1, and NEW0 is
    // person 1 too; the others are persons of their own. And a personKey lookup table of the run.
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $2, $1, case_id,
              CASE WHEN case_id LIKE 'OLD%' THEN substr(case_id, 4)::int + 1
                   WHEN case_id = 'NEW0' THEN 1 ELSE 100 + row_number() OVER (ORDER BY case_id) END
         FROM records.probation_cases`,
      [dataset.id, run.id],
    );
    const [scope] = await broker.query<{ id: number }>(
      `INSERT INTO person_key_scope (run_id, agreement_id, scope, dataset_id, population)
       VALUES ($1, $3, 'agency/PURPOSE', $2, '') RETURNING id`,
      [run.id, dataset.id, agreementId],
    );
    await broker.query(
      `INSERT INTO person_key (scope_id, record_key, person_id, prefix)
       SELECT $1::int, record_key, person_id, person_id FROM linkage_person WHERE run_id = $2`,
      [scope.id, run.id],
    );
    const keptInTable = () =>
      broker.query<{ record_key: string }>(
        `SELECT record_key FROM person_key WHERE scope_id = $1 ORDER BY record_key`,
        [scope.id],
      );
    expect(await keptInTable()).toHaveLength(13);
    await broker.gqlOk(steward.apiKey, `mutation($i: ConsentInput!) { recordConsent(input: $i) { id } }`, {
      i: { datasetId: dataset.id, subjectId: 'OLD-P1', purpose: 'RECIDIVISM_EVALUATION', granted: true },
    });
    const before = await broker.gql(
      analyst.apiKey,
      `{ probation_cases(purpose: RECIDIVISM_EVALUATION) { nodes { case_id } } }`,
      {},
      '/data/graphql',
    );
    expect((before.data as any).probation_cases.nodes).toHaveLength(13);

    const counts = async () => {
      const res = await broker.gql(
        analyst.apiKey,
        `{ probation_cases_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: [program]) { groups { key count } } }`,
        {},
        '/data/graphql',
      );
      expect(res.errors).toBeUndefined();
      return (res.data as { probation_cases_aggregate: { groups: unknown[] } }).probation_cases_aggregate
        .groups;
    };
    expect(await counts()).toEqual([
      { key: { program: 'HOUSING' }, count: 7 },
      { key: { program: 'JOBS' }, count: 6 },
    ]);

    const report = await retention.run({ batch: 3 });
    expect(report.destroyed).toBe(7);
    expect(report.datasets.find((d) => d.datasetId === dataset.id)).toEqual({
      datasetId: dataset.id,
      destroyed: 7,
      batches: 3,
      keptWithoutDate: 2,
    });
    expect(await destroyedEvents()).toEqual([3, 3, 1]);
    expect(await keys()).toEqual(['NEW0', 'NEW1', 'NEW2', 'NEW3', 'NUL0', 'NUL1']);

    const rows = await broker.gql(
      analyst.apiKey,
      `{ probation_cases(purpose: RECIDIVISM_EVALUATION) { nodes { case_id } } }`,
      {},
      '/data/graphql',
    );
    expect(
      (rows.data as any).probation_cases.nodes.map((n: { case_id: string }) => n.case_id).sort(),
    ).toEqual(['NEW0', 'NEW1', 'NEW2', 'NEW3', 'NUL0', 'NUL1']);
    expect(await counts()).toEqual([
      { key: { program: 'HOUSING' }, count: 3 },
      { key: { program: 'JOBS' }, count: 3 },
    ]);
    const linked = await broker.query<{ record_key: string }>(
      `SELECT record_key FROM linkage_person WHERE dataset_id = $1 ORDER BY record_key`,
      [dataset.id],
    );
    expect(linked.map((l) => l.record_key)).toEqual(['NEW0', 'NEW1', 'NEW2', 'NEW3', 'NUL0', 'NUL1']);
    // And the personKey lookup table only those that stay.
    expect((await keptInTable()).map((r) => r.record_key)).toEqual(linked.map((l) => l.record_key));
    // Consent and the release stay: the subject access report still answers for a destroyed record.
    expect(
      await broker.query(`SELECT subject_id FROM consent_current WHERE subject_id = 'OLD-P1'`),
    ).toHaveLength(1);
    const access = await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'OLD-P1' });
    expect(access.subjectAccessReport).toEqual([{ action: 'QUERY', fields: ['case_id'] }]);

    const [schedule] = await broker.query<{ last_destroyed: string; last_finished_at: Date | null }>(
      `SELECT last_destroyed::text, last_finished_at FROM retention_schedule`,
    );
    expect(schedule.last_destroyed).toBe('7');
    expect(schedule.last_finished_at).not.toBeNull();
    // Idempotent: a second run finds nothing more.
    expect((await retention.run()).destroyed).toBe(0);
    expect(await destroyedEvents()).toEqual([3, 3, 1]);
  });

  it('loses nothing that should stay and leaves nothing that should go, across a crash mid-run', async () => {
    await ingest(records('GONE', 8, daysAgo(100)));
    // The second batch fails in the middle of its transaction, as a crash would end it.
    await broker.query(`
      CREATE FUNCTION crash_second_batch() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF (SELECT count(*) FROM audit_event WHERE action = 'RECORDS_DESTROYED') >= 4 THEN
          RAISE EXCEPTION 'simulated crash';
        END IF;
        RETURN NEW;
      END $$`);
    await broker.query(
      `CREATE TRIGGER crash BEFORE INSERT ON destroyed_record FOR EACH ROW EXECUTE FUNCTION crash_second_batch()`,
    );
    await expect(retention.run({ batch: 3 })).rejects.toThrow(/simulated crash/);
    // The first batch is gone wholly, with its event; the failed one is all still there.
    expect(await destroyedEvents()).toEqual([3, 3, 1, 3]);
    const left = await keys();
    expect(left.filter((k) => k.startsWith('GONE'))).toHaveLength(5);
    expect(left.filter((k) => !k.startsWith('GONE'))).toEqual([
      'NEW0',
      'NEW1',
      'NEW2',
      'NEW3',
      'NUL0',
      'NUL1',
    ]);
    const [{ last_error }] = await broker.query<{ last_error: string }>(
      `SELECT last_error FROM retention_schedule`,
    );
    expect(last_error).toMatch(/simulated crash/);

    await broker.query(`DROP TRIGGER crash ON destroyed_record`);
    expect((await retention.run({ batch: 3 })).destroyed).toBe(5);
    expect(await keys()).toEqual(['NEW0', 'NEW1', 'NEW2', 'NEW3', 'NUL0', 'NUL1']);
    expect(await destroyedEvents()).toEqual([3, 3, 1, 3, 3, 2]);
    const verified = await broker.gqlOk(broker.operatorKey, `{ verifyAuditChain { valid } }`);
    expect(verified.verifyAuditChain.valid).toBe(true);
  });

  it('builds the index of the retention field again where a failed build left it invalid', async () => {
    const retentionIndex = async () =>
      broker.query<{ name: string; def: string; valid: boolean }>(
        `SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisvalid AS valid
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'records' AND c.relname LIKE 'probation\\_cases\\_retention\\_%'`,
      );
    const [built] = await retentionIndex();
    expect(built.valid).toBe(true);
    await broker.query(`DROP INDEX records."${built.name}"`);
    // What a failed CREATE INDEX CONCURRENTLY leaves: the index, invalid, under the same name.
    const table = built.def.replace(/^.* ON (\S+) USING .*$/, '$1');
    await expect(
      broker.query(`CREATE UNIQUE INDEX CONCURRENTLY "${built.name}" ON ${table} ((1))`),
    ).rejects.toThrow(/could not create unique index/);
    expect((await retentionIndex()).map((i) => i.valid)).toEqual([false]);
    await retention.run();
    expect(await retentionIndex()).toEqual([built]);
  });

  it('keeps the daily job scheduled from PostgreSQL, and runs it at once when overdue', async () => {
    const queue = broker.app.get<Queue<RetentionJob>>(getQueueToken(QueueName.RETENTION));
    const scheduler = new RetentionScheduler(queue, broker.app.get(DataSource), broker.app.get(LOGGER));
    // As after a Redis restart: no scheduler, no job; the last run started two days ago.
    await queue.obliterate({ force: true });
    await broker.query(`UPDATE retention_schedule SET last_started_at = now() - interval '2 days'`);
    await scheduler.ensure();
    const schedulers = await queue.getJobSchedulers();
    expect(schedulers.map((s) => ({ key: s.key, every: Number(s.every) }))).toEqual([
      { key: 'retention-daily', every: 24 * 3_600_000 },
    ]);
    const overdue = (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((j) =>
      j.id?.startsWith('retention-overdue-'),
    );
    expect(overdue.map((j) => j.data)).toEqual([{ trigger: 'overdue' }]);
    // Twice in the same hour adds no second run.
    await scheduler.ensure();
    expect(
      (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((j) =>
        j.id?.startsWith('retention-overdue-'),
      ),
    ).toHaveLength(1);
    await queue.obliterate({ force: true });
  });

  it("destroys linkage's review pairs and reviewers' decisions that name a destroyed record", async () => {
    await ingest(records('REV', 2, daysAgo(200)));
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    const [user] = await broker.query<{ id: string }>(`SELECT id FROM app_user LIMIT 1`);
    // A pair of a record to destroy with one that stays, each way round, and one of two that stay.
    const pairs: [string, string][] = [
      ['NEW0', 'REV0'],
      ['REV1', 'NEW1'],
      ['NEW2', 'NEW3'],
    ];
    for (const [i, [a, b]] of pairs.entries()) {
      await broker.query(
        `INSERT INTO linkage_review_pair (run_id, pair, dataset_a, key_a, dataset_b, key_b, levels, weight)
         VALUES ($1, $2, $3, $4, $3, $5, '[0, 1]', 1.5)`,
        [run.id, i, dataset.id, a, b],
      );
      await broker.query(
        `INSERT INTO linkage_decision (dataset_a, key_a, dataset_b, key_b, same, decided_by, run_id)
         VALUES ($1, $2, $1, $3, true, $4, $5)`,
        // A decision names its two records in a fixed order.
        [dataset.id, ...[a, b].sort(), user.id, run.id],
      );
    }
    expect((await retention.run()).destroyed).toBe(2);
    expect(await broker.query(`SELECT key_a, key_b FROM linkage_review_pair ORDER BY pair`)).toEqual([
      { key_a: 'NEW2', key_b: 'NEW3' },
    ]);
    expect(await broker.query(`SELECT key_a, key_b FROM linkage_decision`)).toEqual([
      { key_a: 'NEW2', key_b: 'NEW3' },
    ]);
    await broker.query(`DELETE FROM linkage_review_pair`);
    await broker.query(`DELETE FROM linkage_decision`);
  });
});
