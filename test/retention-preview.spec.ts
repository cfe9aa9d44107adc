import fc from 'fast-check';
import { AuthService, type RequestContext } from '@broker/auth';
import { Database } from '@broker/core';
import {
  MAX_DATASET_RETENTION_DAYS,
  cutoffParameter,
  pastRetentionSql,
  RetentionPreviewService,
  retentionCutoff,
  RetentionService,
} from '@broker/registry';
import type { EntityManager } from 'typeorm';
import { TestBroker } from '@broker/testing';

const PREVIEW = `query($d: ID!, $days: Int, $field: String) {
  retentionPreview(datasetId: $d, retentionDays: $days, retentionField: $field) {
    datasetId retentionDays retentionField destroyed destroyedByCurrent keptWithoutDate records cutoff asOf } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { id } }`;
const INGEST = `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted rejected } }`;
const DAY = 86_400_000;
const FIELDS = [
  { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
  { name: 'released_on', type: 'DATE', classification: 'NON_SENSITIVE' },
  { name: 'closed_at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
  { name: 'officer', type: 'STRING', classification: 'NON_SENSITIVE' },
];

interface Preview {
  datasetId: string;
  retentionDays: number | null;
  retentionField: string | null;
  destroyed: number;
  destroyedByCurrent: number;
  keptWithoutDate: number;
  records: number;
  cutoff: string | null;
  asOf: string;
}
interface CaseRecord {
  case_id: string;
  released_on: string | null;
  closed_at: string | null;
}

/**
 * retentionPreview: what a retention would destroy, counted before it is set, with the retention
 * job's own cutoff and condition; the job then destroys exactly what was counted.
 */
describe('retention preview', () => {
  let broker: TestBroker;
  let retention: RetentionService;
  let previews: RetentionPreviewService;
  let steward: { id: string; apiKey: string };
  let analyst: { id: string; apiKey: string };
  let otherSteward: { id: string; apiKey: string };
  let auditor: { id: string; apiKey: string };
  let ctx: RequestContext;

  const register = (slug: string) =>
    broker.registerDataset(steward.apiKey, { slug, title: slug, keyField: 'case_id', fields: FIELDS });
  const ingest = async (datasetId: string, records: CaseRecord[]) => {
    if (!records.length) return;
    const { ingestRecords } = await broker.gqlOk<{ ingestRecords: { inserted: number; rejected: number } }>(
      steward.apiKey,
      INGEST,
      { id: datasetId, r: records.map((r) => ({ ...r, officer: 'K. Ito' })) },
    );
    expect(ingestRecords).toEqual({ inserted: records.length, rejected: 0 });
  };
  const keys = async (slug: string) =>
    (await broker.query<{ case_id: string }>(`SELECT case_id FROM records.${slug} ORDER BY case_id`)).map(
      (r) => r.case_id,
    );
  const preview = async (key: string, d: string, days?: number | null, field?: string | null) =>
    (await broker.gqlOk<{ retentionPreview: Preview }>(key, PREVIEW, { d, days, field })).retentionPreview;
  const destroyedIn = (report: { datasets: { datasetId: string; destroyed: number }[] }, id: string) =>
    report.datasets.find((d) => d.datasetId === id)?.destroyed ?? 0;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'retention_preview' });
    retention = broker.app.get(RetentionService);
    previews = broker.app.get(RetentionPreviewService);
    const probation = await broker.createAgency('Probation');
    const research = await broker.createAgency('Research Office');
    steward = await broker.createUser({ agencyId: probation.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: probation.id, role: 'ANALYST' });
    otherSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    auditor = await broker.oversightAuditor();
    // What the GraphQL route hands the service, for the counts at a fixed instant.
    ctx = { principal: (await broker.app.get(AuthService).authenticate(steward.apiKey))!, requestId: 'test' };
  });
  afterAll(() => broker.close());

  it('counts what the proposed and the current retention would destroy, and the job then destroys that', async () => {
    const dataset = await register('probation_cases');
    const daysAgo = (n: number) => new Date(Date.now() - n * DAY);
    const date = (n: number) => daysAgo(n).toISOString().slice(0, 10);
    // Far from any cutoff, so that the seconds between the count and the run change nothing.
    await ingest(dataset.id, [
      ...Array.from({ length: 5 }, (_, i) => ({
        case_id: `OLD${i}`,
        released_on: date(400 + i),
        closed_at: daysAgo(90).toISOString(),
      })),
      ...Array.from({ length: 3 }, (_, i) => ({
        case_id: `MID${i}`,
        released_on: date(60),
        closed_at: daysAgo(10).toISOString(),
      })),
      { case_id: 'NEW0', released_on: date(2), closed_at: daysAgo(2).toISOString() },
      { case_id: 'NUL0', released_on: null, closed_at: null },
      { case_id: 'NUL1', released_on: null, closed_at: daysAgo(500).toISOString() },
    ]);
    const before = Date.now();
    const first = await preview(steward.apiKey, dataset.id, 365, 'released_on');
    const after = Date.now();
    expect(first).toEqual({
      datasetId: dataset.id,
      retentionDays: 365,
      retentionField: 'released_on',
      destroyed: 5,
      destroyedByCurrent: 0,
      keptWithoutDate: 2,
      records: 11,
      cutoff: expect.any(String),
      asOf: expect.any(String),
    });
    const asOf = Date.parse(first.asOf);
    expect(asOf).toBeGreaterThanOrEqual(before - 1000);
    expect(asOf).toBeLessThanOrEqual(after + 1000);
    // The database runs in UTC: 365 calendar days are 365 × 24 hours.
    expect(Date.parse(first.cutoff!)).toBe(asOf - 365 * DAY);

    expect(await preview(steward.apiKey, dataset.id, 30, 'released_on')).toMatchObject({
      destroyed: 8,
      keptWithoutDate: 2,
      records: 11,
    });
    expect(await preview(steward.apiKey, dataset.id, 30, 'closed_at')).toMatchObject({
      destroyed: 6,
      keptWithoutDate: 1,
      records: 11,
    });

    // Set: the current retention is counted beside any proposal; removing it destroys nothing.
    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 30, retentionField: 'closed_at' },
    });
    expect(await preview(steward.apiKey, dataset.id, 365, 'released_on')).toMatchObject({
      destroyed: 5,
      destroyedByCurrent: 6,
    });
    const removing = await preview(steward.apiKey, dataset.id);
    expect(removing).toEqual({
      datasetId: dataset.id,
      retentionDays: null,
      retentionField: null,
      destroyed: 0,
      destroyedByCurrent: 6,
      keptWithoutDate: 0,
      records: 11,
      cutoff: null,
      asOf: expect.any(String),
    });
    expect(await preview(steward.apiKey, dataset.id, null, null)).toMatchObject({
      destroyed: 0,
      destroyedByCurrent: 6,
    });

    // What the preview counted is what the daily job destroys.
    const counted = await preview(steward.apiKey, dataset.id, 30, 'closed_at');
    expect(counted).toMatchObject({ destroyed: 6, destroyedByCurrent: 6, keptWithoutDate: 1 });
    const report = await retention.run();
    expect(report.datasets.find((d) => d.datasetId === dataset.id)).toMatchObject({
      destroyed: counted.destroyed,
      keptWithoutDate: counted.keptWithoutDate,
    });
    expect(await keys('probation_cases')).toEqual(['MID0', 'MID1', 'MID2', 'NEW0', 'NUL0']);
    expect(await preview(steward.apiKey, dataset.id, 30, 'closed_at')).toMatchObject({
      destroyed: 0,
      destroyedByCurrent: 0,
      records: 5,
    });
  });

  it('draws the line where the job does: a DATETIME exactly at the cutoff and a DATE on its day are kept', async () => {
    const dataset = await register('boundary_cases');
    // A fixed instant, away from any change of clocks: the cutoff 30 days before is 2026-05-16T12:00Z.
    const now = new Date('2026-06-15T12:00:00.000Z');
    await ingest(dataset.id, [
      { case_id: 'A1', released_on: '2020-01-01', closed_at: '2019-06-01T00:00:00.000Z' },
      { case_id: 'A2', released_on: '2026-05-15', closed_at: '2026-05-16T11:59:59.999Z' },
      { case_id: 'A3', released_on: '2026-05-16', closed_at: '2026-05-16T12:00:00.000Z' },
      { case_id: 'A4', released_on: '2026-05-17', closed_at: '2026-05-16T12:00:00.001Z' },
      { case_id: 'A5', released_on: null, closed_at: null },
      { case_id: 'A6', released_on: '2026-06-15', closed_at: null },
      { case_id: 'A7', released_on: null, closed_at: '2026-01-01T00:00:00.000Z' },
    ]);
    const at = (days: number, field: string) =>
      previews.preview(ctx, dataset.id, { retentionDays: days, retentionField: field }, { now });

    expect(await at(30, 'released_on')).toEqual({
      datasetId: dataset.id,
      retentionDays: 30,
      retentionField: 'released_on',
      destroyed: 2,
      destroyedByCurrent: 0,
      keptWithoutDate: 2,
      records: 7,
      cutoff: new Date('2026-05-16T12:00:00.000Z'),
      asOf: now,
    });
    expect(await at(30, 'closed_at')).toMatchObject({ destroyed: 3, keptWithoutDate: 2 });
    // A day more: A2 is dated the new cutoff's day, and kept; its DATETIME is a day after the cutoff.
    expect(await at(31, 'released_on')).toMatchObject({ destroyed: 1 });
    expect(await at(31, 'closed_at')).toMatchObject({ destroyed: 2 });

    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 30, retentionField: 'closed_at' },
    });
    const counted = await at(30, 'released_on');
    expect(counted).toMatchObject({ destroyed: 2, destroyedByCurrent: 3 });
    // The job at the same instant destroys what the current retention was counted to: A1, A2, A7.
    const report = await retention.run({ now });
    expect(destroyedIn(report, dataset.id)).toBe(counted.destroyedByCurrent);
    expect(await keys('boundary_cases')).toEqual(['A3', 'A4', 'A5', 'A6']);

    // And by released_on: A3, dated the cutoff's day, stays.
    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 30, retentionField: 'released_on' },
    });
    expect(await at(30, 'released_on')).toMatchObject({ destroyed: 0, destroyedByCurrent: 0, records: 4 });
    expect(destroyedIn(await retention.run({ now }), dataset.id)).toBe(0);
    expect(await keys('boundary_cases')).toEqual(['A3', 'A4', 'A5', 'A6']);
    await broker.gqlOk(steward.apiKey, UPDATE, { id: dataset.id, input: { retentionDays: 0 } });
  });

  it('compares a DATE with the cutoff day in UTC, whatever the time zone of the process or the database', async () => {
    // The job and the preview bind the cutoff as its UTC instant, never as a Date the driver would
    // write in the process's local time (a worker in UTC+14 would then read 2026-05-17).
    expect(cutoffParameter(new Date('2026-05-16T12:00:00.000Z'))).toBe('2026-05-16T12:00:00.000Z');
    // In a session of each time zone (set for its transaction only).
    const inZone = <T>(zone: string, work: (manager: EntityManager) => Promise<T>) =>
      broker.app.get(Database).transaction(async ({ manager }) => {
        await manager.query(`SELECT set_config('TimeZone', $1, true)`, [zone]);
        return work(manager);
      });
    for (const zone of ['Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/Los_Angeles', 'UTC']) {
      const past = await inZone(zone, (manager) =>
        manager.query<{ d: string }[]>(
          `SELECT d::text FROM (VALUES ('2026-05-15'::date), ('2026-05-16'::date), ('2026-05-17'::date)) v(d)
            WHERE ${pastRetentionSql('d', '$1')} ORDER BY d`,
          [cutoffParameter(new Date('2026-05-16T23:30:00.000Z'))],
        ),
      );
      expect({ zone, past }).toEqual({ zone, past: [{ d: '2026-05-15' }] });
      // Days of 24 hours in UTC, also across a change of clocks in the session's time zone (the
      // United States moved to summer time on 2026-03-08).
      const cutoff = await inZone(zone, (manager) =>
        retentionCutoff(manager, 30, new Date('2026-03-10T12:00:00.000Z')),
      );
      expect({ zone, cutoff }).toEqual({ zone, cutoff: new Date('2026-02-08T12:00:00.000Z') });
    }
  });

  it('refuses whoever may not change the retention, and a retention updateDataset refuses: audited, nothing counted or changed', async () => {
    const dataset = await register('refused_cases');
    await ingest(dataset.id, [{ case_id: 'R1', released_on: '2001-01-01', closed_at: null }]);
    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 400, retentionField: 'released_on' },
    });
    const state = async () => ({
      dataset: await broker.query(
        `SELECT retention_days, retention_field, title FROM dataset WHERE id = $1`,
        [dataset.id],
      ),
      records: await keys('refused_cases'),
    });
    const unchanged = await state();
    const transaction = jest.spyOn(broker.app.get(Database), 'transaction');
    const unknown = '00000000-0000-4000-8000-000000000000';
    const cases: [
      string,
      { id: string; apiKey: string },
      Record<string, unknown>,
      string,
      string,
      string | null,
    ][] = [
      [
        'an analyst of the provider',
        analyst,
        { d: dataset.id, days: 30, field: 'released_on' },
        'FORBIDDEN',
        'ROLE',
        null,
      ],
      ['an auditor', auditor, { d: dataset.id, days: 30, field: 'released_on' }, 'FORBIDDEN', 'ROLE', null],
      [
        'the operator',
        { id: '', apiKey: broker.operatorKey },
        { d: dataset.id, days: 30, field: 'released_on' },
        'FORBIDDEN',
        'ROLE',
        null,
      ],
      [
        "another agency's steward",
        otherSteward,
        { d: dataset.id, days: 30, field: 'released_on' },
        'NOT_FOUND',
        'NOT_PARTY',
        'Dataset not found',
      ],
      [
        'an unknown dataset',
        steward,
        { d: unknown, days: 30, field: 'released_on' },
        'NOT_FOUND',
        'NOT_PARTY',
        'Dataset not found',
      ],
      [
        'no dataset id at all',
        steward,
        { d: 'not-an-id', days: 30, field: 'released_on' },
        'NOT_FOUND',
        'NOT_PARTY',
        'Dataset not found',
      ],
      [
        'negative days',
        steward,
        { d: dataset.id, days: -5, field: 'released_on' },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionDays must be an integer from 1 to 36500',
      ],
      [
        'more than a century',
        steward,
        { d: dataset.id, days: 36_501, field: 'released_on' },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionDays must be an integer from 1 to 36500',
      ],
      [
        'a field that is no date',
        steward,
        { d: dataset.id, days: 30, field: 'officer' },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionField must be a DATE or DATETIME field',
      ],
      [
        'a field it does not have',
        steward,
        { d: dataset.id, days: 30, field: 'nope' },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionField must name one of the fields',
      ],
      [
        'days without a field',
        steward,
        { d: dataset.id, days: 30 },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionField is required with retentionDays: a DATE or DATETIME field',
      ],
      [
        'a field without days',
        steward,
        { d: dataset.id, field: 'closed_at' },
        'BAD_USER_INPUT',
        'INVALID',
        'The retention is invalid: retentionDays is required with a retentionField',
      ],
    ];
    for (const [what, caller, variables, code, reason, message] of cases) {
      const seq = await broker.auditHeadSeq();
      const res = await broker.gql(caller.apiKey, PREVIEW, variables);
      expect({ what, data: res.data, errors: res.errors?.map((e) => e.extensions?.code) }).toEqual({
        what,
        data: null,
        errors: [code],
      });
      expect(res.errors?.[0].extensions?.reason).toBe(reason);
      if (message) expect(res.errors?.[0].message).toBe(message);
      const events = await broker.query<Record<string, unknown>>(
        `SELECT action, decision, reason, actor_user_id, dataset_id, details->'operations' AS operations
           FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [seq],
      );
      expect({ what, events }).toEqual({
        what,
        events: [
          {
            action: 'REQUEST_REFUSED',
            decision: 'DENY',
            reason,
            actor_user_id: caller.id || expect.any(String),
            dataset_id: variables.d === 'not-an-id' ? null : variables.d,
            operations: ['retentionPreview'],
          },
        ],
      });
    }
    // Variables GraphQL cannot coerce (past Int, not whole, of another type): 400, never 500, audited.
    for (const variables of [
      { d: dataset.id, days: 2 ** 31, field: 'released_on' },
      { d: dataset.id, days: 30.5, field: 'released_on' },
      { d: dataset.id, days: '30', field: 'released_on' },
      { d: dataset.id, days: 30, field: ['released_on'] },
      { d: { id: dataset.id }, days: 30, field: 'released_on' },
      { d: null, days: 30, field: 'released_on' },
    ]) {
      const seq = await broker.auditHeadSeq();
      const res = await broker.gql(steward.apiKey, PREVIEW, variables);
      expect({
        variables,
        status: res.status,
        data: res.data,
        codes: res.errors?.map((e) => e.extensions?.code),
      }).toEqual({
        variables,
        status: 400,
        data: null,
        codes: ['BAD_USER_INPUT'],
      });
      expect(
        await broker.query(`SELECT action, decision, reason FROM audit_event WHERE seq > $1 ORDER BY seq`, [
          seq,
        ]),
      ).toEqual([{ action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'INVALID' }]);
    }
    // No snapshot was opened to count: every refusal came first.
    expect(transaction.mock.calls.filter(([, options]) => options?.readOnly)).toEqual([]);
    transaction.mockRestore();
    expect(await state()).toEqual(unchanged);
    // The steward it is for is answered.
    expect(await preview(steward.apiKey, dataset.id, 30, 'released_on')).toMatchObject({
      destroyed: 1,
      destroyedByCurrent: 1,
    });
  });

  it('reads 0 days as updateDataset does: no retention, so nothing would be destroyed', async () => {
    const dataset = await register('zero_cases');
    await ingest(dataset.id, [
      { case_id: 'Z1', released_on: '2001-01-01', closed_at: null },
      { case_id: 'Z2', released_on: new Date().toISOString().slice(0, 10), closed_at: null },
    ]);
    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 400, retentionField: 'released_on' },
    });
    const none = {
      datasetId: dataset.id,
      retentionDays: null,
      retentionField: null,
      destroyed: 0,
      destroyedByCurrent: 1,
      keptWithoutDate: 0,
      records: 2,
      cutoff: null,
      asOf: expect.any(String),
    };
    const seq = await broker.auditHeadSeq();
    // 0 alone, 0 beside a field (ignored, as updateDataset ignores it), and both left out alike.
    expect(await preview(steward.apiKey, dataset.id, 0)).toEqual(none);
    expect(await preview(steward.apiKey, dataset.id, 0, 'released_on')).toEqual(none);
    expect(await preview(steward.apiKey, dataset.id, 0, 'officer')).toEqual(none);
    expect(await preview(steward.apiKey, dataset.id)).toEqual(none);
    // A preview changes nothing and records nothing.
    expect(await broker.query(`SELECT action FROM audit_event WHERE seq > $1`, [seq])).toEqual([]);
    // What it said is what updateDataset then does with the same input.
    await broker.gqlOk(steward.apiKey, UPDATE, {
      id: dataset.id,
      input: { retentionDays: 0, retentionField: 'released_on' },
    });
    expect(
      await broker.query(`SELECT retention_days, retention_field FROM dataset WHERE id = $1`, [dataset.id]),
    ).toEqual([{ retention_days: null, retention_field: null }]);
    expect(await preview(steward.apiKey, dataset.id, 0)).toEqual({ ...none, destroyedByCurrent: 0 });
    // Below 0 is still refused, by both.
    for (const res of [
      await broker.gql(steward.apiKey, PREVIEW, { d: dataset.id, days: -1, field: 'released_on' }),
      await broker.gql(steward.apiKey, UPDATE, {
        id: dataset.id,
        input: { retentionDays: -1, retentionField: 'released_on' },
      }),
    ]) {
      expect(res.errors?.map((e) => [e.extensions?.code, e.message])).toEqual([
        ['BAD_USER_INPUT', 'The retention is invalid: retentionDays must be an integer from 1 to 36500'],
      ]);
    }
  });

  it('stops a count past its time limit: refused as a LIMIT, audited, nothing changed', async () => {
    const dataset = await register('slow_cases');
    await ingest(dataset.id, [{ case_id: 'S1', released_on: '2001-01-01', closed_at: null }]);
    // A session holding the table, as a long DDL would: the count waits, and its time runs out.
    const blocker = broker.app.get(Database);
    const seq = await broker.auditHeadSeq();
    previews.statementTimeoutMs = 300;
    try {
      const res = await blocker.transaction(async (tx) => {
        await tx.query(`LOCK TABLE records.slow_cases IN ACCESS EXCLUSIVE MODE`);
        return broker.gql(steward.apiKey, PREVIEW, { d: dataset.id, days: 30, field: 'released_on' });
      });
      expect(res.data).toBeNull();
      expect(res.errors?.map((e) => [e.extensions?.code, e.extensions?.reason, e.message])).toEqual([
        [
          'BAD_USER_INPUT',
          'LIMIT',
          'Counting the records took too long, so the count was stopped; the retention can still be changed',
        ],
      ]);
    } finally {
      previews.statementTimeoutMs = 10_000;
    }
    expect(
      await broker.query(
        `SELECT action, decision, reason, dataset_id FROM audit_event WHERE seq > $1 ORDER BY seq`,
        [seq],
      ),
    ).toEqual([{ action: 'REQUEST_REFUSED', decision: 'DENY', reason: 'LIMIT', dataset_id: dataset.id }]);
    expect(await keys('slow_cases')).toEqual(['S1']);
    expect(await preview(steward.apiKey, dataset.id, 30, 'released_on')).toMatchObject({ destroyed: 1 });
  });

  it('counts in a snapshot of its own: neither a retention batch nor an ingestion under way makes it wait', async () => {
    const dataset = await register('busy_cases');
    await ingest(dataset.id, [
      { case_id: 'B1', released_on: '2001-01-01', closed_at: null },
      { case_id: 'B2', released_on: '2001-01-02', closed_at: null },
      { case_id: 'B3', released_on: null, closed_at: null },
    ]);
    const db = broker.app.get(Database);
    // A batch of the job, its rows locked and deleted but not committed, as a run holds them: the
    // count sees the records as they stood, without waiting for the batch.
    const counts = await db.transaction(async (tx) => {
      await tx.query(
        `DELETE FROM records.busy_cases WHERE ctid IN (
           SELECT ctid FROM records.busy_cases WHERE ${pastRetentionSql('released_on', '$1')} FOR UPDATE SKIP LOCKED)`,
        [cutoffParameter(new Date(Date.UTC(2010, 0, 1)))],
      );
      // And an ingestion of the same table under way (a record inserted, one updated, not committed).
      const both = await db.transaction(async (ingesting) => {
        await ingesting.query(
          `INSERT INTO records.busy_cases (case_id, released_on, officer) VALUES ('B4', '2001-01-03', 'K. Ito')`,
        );
        await ingesting.query(
          `UPDATE records.busy_cases SET released_on = '2000-01-01' WHERE case_id = 'B3'`,
        );
        return preview(steward.apiKey, dataset.id, 30, 'released_on');
      });
      // The ingestion committed, the batch not yet.
      return { both, batch: await preview(steward.apiKey, dataset.id, 30, 'released_on') };
    });
    expect(counts.both).toMatchObject({ destroyed: 2, keptWithoutDate: 1, records: 3 });
    expect(counts.batch).toMatchObject({ destroyed: 4, keptWithoutDate: 0, records: 4 });
    // The batch committed: what the count saw it hold is gone, and the rest is counted.
    expect(await keys('busy_cases')).toEqual(['B3', 'B4']);
    expect(await preview(steward.apiKey, dataset.id, 30, 'released_on')).toMatchObject({
      destroyed: 2,
      records: 2,
    });
  });

  it('answers at most four counts in one request: five are refused before anything is counted', async () => {
    const dataset = await register('many_cases');
    // Another steward of the agency: its LIMIT refusal is not merged with the one above.
    const colleague = await broker.createUser({ agencyId: ctx.principal.agencyId, role: 'STEWARD' });
    const aliases = (n: number) =>
      `query($d: ID!) { ${Array.from({ length: n }, (_, i) => `p${i}: retentionPreview(datasetId: $d, retentionDays: ${i + 1}, retentionField: "closed_at") { destroyed }`).join(' ')} }`;
    const four = await broker.gql(colleague.apiKey, aliases(4), { d: dataset.id });
    expect(four.errors).toBeUndefined();
    expect(Object.values(four.data ?? {})).toEqual([0, 0, 0, 0].map((destroyed) => ({ destroyed })));
    const transaction = jest.spyOn(broker.app.get(Database), 'transaction');
    const five = await broker.gql(colleague.apiKey, aliases(5), { d: dataset.id });
    expect(five.status).toBe(400);
    expect(five.errors?.map((e) => [e.extensions?.code, e.extensions?.reason])).toEqual([
      ['BAD_USER_INPUT', 'LIMIT'],
    ]);
    expect(transaction.mock.calls.filter(([, options]) => options?.readOnly)).toEqual([]);
    transaction.mockRestore();
  });

  it('counts what the job destroys, for any retention and dates (fast-check)', async () => {
    // Two datasets holding the same records: A keeps the current retention, B takes the proposed one,
    // and one run of the job at the preview's instant destroys in each what the preview counted.
    const a = await register('prop_current');
    const b = await register('prop_proposed');
    const FIELD = { DATE: 'released_on', DATETIME: 'closed_at' } as const;
    const retentionArb = fc.option(
      fc.record({
        retentionDays: fc.oneof(
          fc.integer({ min: 1, max: 5 }),
          fc.integer({ min: 1, max: 800 }),
          fc.constant(MAX_DATASET_RETENTION_DAYS),
        ),
        retentionField: fc.constantFrom(FIELD.DATE, FIELD.DATETIME),
      }),
      { nil: null },
    );
    // Dates near the cutoffs a few days give, to the millisecond and the day, and anywhere at all.
    const offsetArb = fc.option(
      fc.oneof(
        fc
          .tuple(fc.integer({ min: 0, max: 6 }), fc.constantFrom(-DAY, -1, 0, 1, DAY))
          .map(([d, e]) => d * DAY + e),
        fc.integer({ min: -10 * DAY, max: 900 * DAY }),
        // About the longest retention's cutoff, and the first and last centuries a date may have.
        fc.integer({ min: -2, max: 2 }).map((d) => (MAX_DATASET_RETENTION_DAYS + d) * DAY),
        fc.constantFrom(738_000 * DAY, -2_900_000 * DAY),
      ),
      { nil: null },
    );
    // A DATETIME is written in UTC or with the offset of a time zone (its instant the same).
    const zoneArb = fc.constantFrom(0, 14 * 60, -12 * 60, 5 * 60 + 30);
    const recordsArb = fc.array(fc.tuple(offsetArb, offsetArb, zoneArb), { maxLength: 20 });
    const inZone = (at: number, minutes: number) => {
      if (minutes === 0) return new Date(at).toISOString();
      const local = new Date(at + minutes * 60_000).toISOString().slice(0, 23);
      const abs = Math.abs(minutes);
      const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
      return `${local}${minutes < 0 ? '-' : '+'}${hhmm}`;
    };
    const nowArb = fc
      .integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 0, 1) })
      .map((t) => new Date(t));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        nowArb,
        retentionArb,
        retentionArb,
        recordsArb,
        async (now, current, proposed, rows) => {
          run += 1;
          const records = rows.map(([dateOffset, instantOffset, zone], i) => ({
            case_id: `P${run}_${i}`,
            released_on:
              dateOffset === null ? null : new Date(now.getTime() - dateOffset).toISOString().slice(0, 10),
            closed_at: instantOffset === null ? null : inZone(now.getTime() - instantOffset, zone),
          }));
          for (const [dataset, retention] of [
            [a, current],
            [b, proposed],
          ] as const) {
            await broker.query(`DELETE FROM records.${dataset.slug}`);
            await ingest(dataset.id, records);
            await broker.query(`UPDATE dataset SET retention_days = $2, retention_field = $3 WHERE id = $1`, [
              dataset.id,
              retention?.retentionDays ?? null,
              retention?.retentionField ?? null,
            ]);
          }
          const counted = await previews.preview(ctx, a.id, proposed ?? {}, { now });
          expect(counted.records).toBe(records.length);
          // The rule in words (docs/register.md), on the values as ingested: a DATETIME before the
          // cutoff instant, a DATE before the cutoff's day in UTC; null never.
          if (proposed) {
            const cutoff = now.getTime() - proposed.retentionDays * DAY;
            expect(counted.cutoff).toEqual(new Date(cutoff));
            const past = records.filter((r) =>
              proposed.retentionField === FIELD.DATE
                ? r.released_on !== null && r.released_on < new Date(cutoff).toISOString().slice(0, 10)
                : r.closed_at !== null && Date.parse(r.closed_at) < cutoff,
            );
            expect(counted.destroyed).toBe(past.length);
          } else expect(counted).toMatchObject({ destroyed: 0, cutoff: null });
          const report = await retention.run({ now });
          expect({
            byCurrent: destroyedIn(report, a.id),
            byProposed: destroyedIn(report, b.id),
            keptWithoutDate: report.datasets.find((d) => d.datasetId === b.id)?.keptWithoutDate ?? 0,
          }).toEqual({
            byCurrent: counted.destroyedByCurrent,
            byProposed: counted.destroyed,
            keptWithoutDate: counted.keptWithoutDate,
          });
          expect((await keys(b.slug)).length).toBe(records.length - counted.destroyed);
        },
      ),
      { numRuns: 30 },
    );
  });
});
