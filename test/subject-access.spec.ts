import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ReleaseIndexer } from '@broker/audit';
import { subjectReleasesSql } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const REPORT = `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) {
  at agency { id name } purpose agreementId agreementVersion action fields } }`;

describe('subject access report: every release of a subject, from the records each release returned', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let steward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };
  let noSubject: { id: string };
  let agreementId: string;

  const rows = async (query: string) => {
    const res = await broker.gql(analyst.apiKey, query, {}, DATA);
    expect(res.errors).toBeUndefined();
    return res.data as Record<string, { nodes: Record<string, unknown>[] }>;
  };
  const report = async (key: string, subject: string, datasetId = dataset.id) =>
    broker.gql(key, REPORT, { d: datasetId, s: subject });

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'subject_access' });
    ({
      providerAgency: cbo,
      recipientAgency: research,
      providerSteward: steward,
      recipientSteward: researchSteward,
      analyst,
    } = await broker.sharingParties('CBO', 'Research', 'RECIDIVISM_EVALUATION'));
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'participation',
      title: 'Participation',
      keyField: 'enrollment_id',
      subjectField: 'participant_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'participant_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
        { name: 'dob', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
      ],
    });
    noSubject = await broker.registerDataset(steward.apiKey, {
      slug: 'programs',
      title: 'Programs',
      keyField: 'code',
      fields: [{ name: 'code', type: 'STRING', classification: 'NON_SENSITIVE' }],
    });
    const csv = [
      'enrollment_id,participant_id,program,dob',
      'E1,P1,JOBS,1990-01-02',
      'E2,P1,HOUSING,1990-01-02',
      'E3,P2,JOBS,1985-05-06',
      'E4,P3,HOUSING,1970-07-08',
    ];
    expect((await broker.upload(steward.apiKey, dataset.id, 'text/csv', csv.join('\n'))).status).toBe(200);
    agreementId = await broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'Participation for evaluation',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          minCellSize: 1,
          fields: [{ name: 'program' }, { name: 'dob', transform: 'GENERALIZE' }],
        },
      ],
    });
  });
  afterAll(() => broker.close());

  it('lists each release that returned a row of the subject, with its agency, purpose, version and fields', async () => {
    expect(
      (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'P1' })).subjectAccessReport,
    ).toEqual([]);
    await rows(`{ participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`);
    await rows(
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { program: { eq: "HOUSING" } }) { nodes { program dob_year } } }`,
    );
    // Returns only P2's row (JOBS, 1985): not a release of P1.
    await rows(
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { dob_year: { eq: 1985 } }) { nodes { dob_year } } }`,
    );
    // Returns no row at all.
    await rows(
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { program: { eq: "NONE" } }) { nodes { program } } }`,
    );
    // Aggregates release no rows.
    const aggregate = await broker.gql(
      analyst.apiKey,
      `{ participation_aggregate(purpose: RECIDIVISM_EVALUATION, groupBy: [program]) { groups { count } } }`,
      {},
      DATA,
    );
    expect(aggregate.errors).toBeUndefined();

    const p1 = (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'P1' })).subjectAccessReport;
    expect(p1).toEqual([
      {
        at: expect.any(String),
        agency: { id: research.id, name: 'Research' },
        purpose: 'RECIDIVISM_EVALUATION',
        agreementId,
        agreementVersion: 1,
        action: 'QUERY',
        fields: ['program'],
      },
      expect.objectContaining({ action: 'QUERY', fields: ['dob_year', 'program'] }),
    ]);
    const p2 = (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'P2' })).subjectAccessReport;
    expect(p2.map((r: { fields: string[] }) => r.fields)).toEqual([['program'], ['dob_year']]);
    const p3 = (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'P3' })).subjectAccessReport;
    expect(p3).toHaveLength(2);
    expect(
      (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'NOBODY' })).subjectAccessReport,
    ).toEqual([]);
  });

  it('records the released records compactly, with their digest in the audit chain', async () => {
    const stored = await broker.query<{ rids: string; digest: string; row_count: number; n: number }>(
      `SELECT r.rids::text AS rids, e.details ->> 'releaseDigest' AS digest, e.row_count, cardinality(r.rids) AS n
         FROM release_record r JOIN audit_event e ON e.seq = r.audit_seq ORDER BY r.audit_seq`,
    );
    expect(stored.map((s) => s.n)).toEqual([4, 2, 1]);
    for (const s of stored) {
      expect(s.n).toBe(s.row_count);
      expect(s.digest).toBe(createHash('sha256').update(s.rids).digest('hex'));
    }
    // The report itself is audited, without the subject id.
    const [event] = await broker.query<{ action: string; dataset_id: string; reason: string | null }>(
      `SELECT action, dataset_id, reason FROM audit_event WHERE action = 'SUBJECT_ACCESS_REPORT' ORDER BY seq DESC LIMIT 1`,
    );
    expect(event).toEqual({ action: 'SUBJECT_ACCESS_REPORT', dataset_id: dataset.id, reason: null });
  });

  it('finds a release whether its ids are in the release index yet or not, once each', async () => {
    const indexer = broker.app.get(ReleaseIndexer);
    const report = async (subject: string) =>
      (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: subject })).subjectAccessReport as {
        fields: string[];
      }[];
    await indexer.catchUp();
    const before = await report('P1');
    // A release the index does not hold yet (its pass held back): found in release_record.
    const schedule = jest.spyOn(indexer, 'schedule').mockImplementation(() => undefined);
    try {
      await rows(
        `{ participation(purpose: RECIDIVISM_EVALUATION, where: { program: { eq: "HOUSING" } }) { nodes { program } } }`,
      );
    } finally {
      schedule.mockRestore();
    }
    const [{ pending }] = await broker.query<{ pending: number }>(
      `SELECT count(*)::int AS pending FROM release_record
        WHERE audit_seq > (SELECT coalesce(max(audit_seq), 0) FROM release_index)`,
    );
    expect(pending).toBe(1);
    const unindexed = await report('P1');
    expect(unindexed).toHaveLength(before.length + 1);
    expect(unindexed[unindexed.length - 1]).toEqual(expect.objectContaining({ fields: ['program'] }));
    // Once copied, the same answer: not twice.
    await expect(indexer.catchUp()).resolves.toBe(1);
    await expect(indexer.catchUp()).resolves.toBe(0);
    expect(await report('P1')).toEqual(unindexed);
    // The copy is as append-only as the record.
    await expect(broker.query(`DELETE FROM release_index`)).rejects.toThrow(/append-only|history|rewrite/i);
    await expect(broker.query(`UPDATE release_index SET rids = '{}'`)).rejects.toThrow(
      /append-only|history|rewrite/i,
    );
  });

  it('searches the release index by its GIN index and the releases past it by their key range (EXPLAIN)', async () => {
    const plan = await broker.app.get(DataSource).transaction(async (manager) => {
      // The test's tables are tiny: without this PostgreSQL would read them whole, index or not.
      await manager.query(`SET LOCAL enable_seqscan = off`);
      const rows = await manager.query<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN ${subjectReleasesSql('participation', 'participant_id')}`,
        [dataset.id, 'P1'],
      );
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    });
    expect(plan).toMatch(/Bitmap Index Scan on release_index_rids_idx/);
    expect(plan).toMatch(/Index Scan (using|on) release_record_pkey[^\n]*\n\s+Index Cond: \(audit_seq > /);
    expect(plan).not.toMatch(/Seq Scan on release_(record|index)/);
  });

  it('copies releases into the index once each, whatever passes run at once', async () => {
    const indexer = broker.app.get(ReleaseIndexer);
    const schedule = jest.spyOn(indexer, 'schedule').mockImplementation(() => undefined);
    try {
      for (let i = 0; i < 5; i++) {
        await rows(
          `{ participation(purpose: RECIDIVISM_EVALUATION, first: ${i + 1}) { nodes { program } } }`,
        );
      }
    } finally {
      schedule.mockRestore();
    }
    const copied = await Promise.all([indexer.catchUp(), indexer.catchUp(), indexer.catchUp()]);
    expect(copied.reduce((a, b) => a + b, 0)).toBe(5);
    const [{ records, copies }] = await broker.query<{ records: number; copies: number }>(
      `SELECT (SELECT count(*)::int FROM release_record) AS records, (SELECT count(*)::int FROM release_index) AS copies`,
    );
    expect(copies).toBe(records);
  });

  it('is for the provider steward only; others learn nothing, not even that the dataset exists', async () => {
    const other = await report(researchSteward.apiKey, 'P1');
    expect(other.data).toBeNull();
    expect(other.errors![0].extensions!.code).toBe('NOT_FOUND');
    for (const role of ['ANALYST', 'OPERATOR', 'AUDITOR']) {
      const user = await broker.createUser({ agencyId: role === 'ANALYST' ? cbo.id : null, role });
      const res = await report(user.apiKey, 'P1');
      expect(res.errors![0].extensions!.code).toBe('FORBIDDEN');
    }
    const missing = await report(steward.apiKey, 'P1', '00000000-0000-4000-8000-000000000000');
    expect(missing.errors![0].extensions!.code).toBe('NOT_FOUND');
    const noSubjectField = await report(steward.apiKey, 'P1', noSubject.id);
    expect(noSubjectField.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
    const tooLong = await report(steward.apiKey, 'x'.repeat(201));
    expect(tooLong.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('names the subject exactly as stored: surrounding spaces make another subject, never P1', async () => {
    const p1 = (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: 'P1' })).subjectAccessReport;
    expect(p1.length).toBeGreaterThan(0);
    // No record has these subjects: each is reported as having had nothing released.
    for (const s of [' P1', 'P1 ', 'P1\t', '\tP1', 'P1\n', '\u00a0P1', 'P1\u3000', '\ufeffP1', '  ']) {
      const res = await report(steward.apiKey, s);
      expect({ s, errors: res.errors, report: res.data?.subjectAccessReport }).toEqual({
        s,
        errors: undefined,
        report: [],
      });
    }
    const empty = await report(steward.apiKey, '');
    expect(empty.errors![0].extensions!.code).toBe('BAD_USER_INPUT');
  });

  it('refuses to report from a release list that no longer matches its audit event', async () => {
    await broker.query(`ALTER TABLE release_record DISABLE TRIGGER USER`);
    await broker.query(
      `UPDATE release_record SET rids = rids || 42::bigint WHERE audit_seq = (SELECT min(audit_seq) FROM release_record)`,
    );
    await broker.query(`ALTER TABLE release_record ENABLE TRIGGER USER`);
    const res = await report(steward.apiKey, 'P1');
    expect(res.data).toBeNull();
    expect(res.errors![0].extensions!.code).toBe('CONFLICT');
    expect(res.errors![0].message).toMatch(/altered/);
  });

  it('records nothing when release recording is turned off (for measuring its cost only)', async () => {
    const off = await TestBroker.start({
      DATABASE_URL: broker.config.DATABASE_URL,
      BROKER_BOOTSTRAP_TOKEN: broker.operatorKey,
      RECORD_RELEASES: 'false',
    });
    try {
      const [{ n: before }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM release_record`,
      );
      const res = await off.gql(
        analyst.apiKey,
        `{ participation(purpose: RECIDIVISM_EVALUATION) { nodes { program } } }`,
        {},
        DATA,
      );
      expect((res.data as any).participation.nodes).toHaveLength(4);
      const [{ n: after }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM release_record`,
      );
      expect(after).toBe(before);
    } finally {
      await off.app.close();
    }
  });

  it("keeps a record's releases with the subject it had then, when a later upload moves it to another", async () => {
    const upload = async (subject: string) =>
      expect(
        (
          await broker.upload(
            steward.apiKey,
            dataset.id,
            'text/csv',
            `enrollment_id,participant_id,program,dob\nE7,${subject},MOVED,1999-09-09`,
          )
        ).status,
      ).toBe(200);
    const released = `{ participation(purpose: RECIDIVISM_EVALUATION, where: { program: { eq: "MOVED" } }) { nodes { program } } }`;
    const fieldsOf = async (subject: string) =>
      (
        (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: subject })).subjectAccessReport as {
          fields: string[];
        }[]
      ).map((r) => r.fields);
    await upload('P7');
    expect((await rows(released)).participation.nodes).toEqual([{ program: 'MOVED' }]);
    // Corrected: the record was P8's. What was released while it was P7's stays P7's, and P8's report
    // lists only what is released of it from now on.
    await upload('P8');
    expect(await fieldsOf('P7')).toEqual([['program']]);
    expect(await fieldsOf('P8')).toEqual([]);
    await rows(
      `{ participation(purpose: RECIDIVISM_EVALUATION, where: { program: { eq: "MOVED" } }) { nodes { program dob_year } } }`,
    );
    expect(await fieldsOf('P7')).toEqual([['program']]);
    expect(await fieldsOf('P8')).toEqual([['dob_year', 'program']]);
    // Uploaded again unchanged, it stays P8's.
    await upload('P8');
    expect(await fieldsOf('P8')).toEqual([['dob_year', 'program']]);
  });
});
