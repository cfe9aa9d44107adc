import fc from 'fast-check';
import { TestBroker } from '@broker/testing';

const RECORD = `mutation($input: ConsentInput!) { recordConsent(input: $input) { id datasetId subjectId purpose granted recordedAt } }`;
const PURPOSES = ['RECIDIVISM_EVALUATION', 'PROGRAM_ADMINISTRATION'];
const SUBJECTS = ['P1', 'P2', 'P3', 'P4', 'P5', 'P6'];

describe('consent: per subject and purpose, latest wins, enforced from the next request', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let steward: { apiKey: string };
  let otherSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };
  let noSubject: { id: string };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'consent' });
    cbo = await broker.createAgency('CBO');
    research = await broker.createAgency('Research');
    steward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    otherSteward = researchSteward;
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    await broker.definePurposes(...PURPOSES);
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'participation',
      title: 'Participation',
      keyField: 'enrollment_id',
      subjectField: 'participant_id',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'participant_id', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'program', type: 'STRING', classification: 'SENSITIVE' },
      ],
    });
    noSubject = await broker.registerDataset(steward.apiKey, {
      slug: 'programs',
      title: 'Programs',
      keyField: 'code',
      fields: [{ name: 'code', type: 'STRING', classification: 'NON_SENSITIVE' }],
    });
    // Two enrolments per subject.
    const csv = [
      'enrollment_id,participant_id,program',
      ...SUBJECTS.flatMap((s, i) => [`${s}-a,${s},JOBS`, `${s}-b,${s},HOUSING${i}`]),
    ];
    expect((await broker.upload(steward.apiKey, dataset.id, 'text/csv', csv.join('\n'))).status).toBe(200);
    await broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'With consent',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: PURPOSES,
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [{ name: 'participant_id' }, { name: 'program' }],
          requireConsent: true,
          // Exact counts, so the property below can compare aggregates with the model.
          minCellSize: 1,
        },
      ],
    });
  });
  afterAll(() => broker.close());

  it('records consent and keeps its history', async () => {
    const first = (
      await broker.gqlOk(steward.apiKey, RECORD, {
        input: { datasetId: dataset.id, subjectId: 'P1', purpose: 'RECIDIVISM_EVALUATION', granted: true },
      })
    ).recordConsent;
    expect(first).toMatchObject({
      datasetId: dataset.id,
      subjectId: 'P1',
      purpose: 'RECIDIVISM_EVALUATION',
      granted: true,
    });
    await broker.gqlOk(steward.apiKey, RECORD, {
      input: { datasetId: dataset.id, subjectId: 'P1', purpose: 'RECIDIVISM_EVALUATION', granted: false },
    });
    const history = await broker.query(
      `SELECT granted FROM consent_event WHERE dataset_id = $1 AND subject_id = 'P1' ORDER BY id`,
      [dataset.id],
    );
    expect(history).toEqual([{ granted: true }, { granted: false }]);
    const current = await broker.query(
      `SELECT granted FROM consent_current WHERE dataset_id = $1 AND subject_id = 'P1'`,
      [dataset.id],
    );
    expect(current).toEqual([{ granted: false }]);
    await expect(broker.query(`DELETE FROM consent_event`)).rejects.toThrow(/append-only/);
  });

  it('refuses bad input and other agencies, and changes nothing', async () => {
    const before = await broker.query(`SELECT count(*)::int AS n FROM consent_event`);
    const cases: [string, Record<string, unknown>, string][] = [
      ['unknown purpose', { purpose: 'MARKETING' }, 'BAD_USER_INPUT'],
      ['empty subject', { subjectId: '' }, 'BAD_USER_INPUT'],
      ['subject too long', { subjectId: 'P'.repeat(201) }, 'BAD_USER_INPUT'],
      ['subject with a NUL', { subjectId: 'P\u0000' }, 'BAD_USER_INPUT'],
      ['subject with a lone surrogate', { subjectId: 'P\ud800' }, 'BAD_USER_INPUT'],
      ['dataset without a subject field', { datasetId: noSubject.id }, 'BAD_USER_INPUT'],
      ['missing dataset', { datasetId: '00000000-0000-4000-8000-000000000000' }, 'NOT_FOUND'],
    ];
    for (const [label, change, code] of cases) {
      const res = await broker.gql(steward.apiKey, RECORD, {
        input: {
          datasetId: dataset.id,
          subjectId: 'P2',
          purpose: 'RECIDIVISM_EVALUATION',
          granted: true,
          ...change,
        },
      });
      expect({ label, code: res.errors?.[0].extensions?.code }).toEqual({ label, code });
    }
    const other = await broker.gql(otherSteward.apiKey, RECORD, {
      input: { datasetId: dataset.id, subjectId: 'P2', purpose: 'RECIDIVISM_EVALUATION', granted: true },
    });
    expect(other.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    const byAnalyst = await broker.gql(analyst.apiKey, RECORD, {
      input: { datasetId: dataset.id, subjectId: 'P2', purpose: 'RECIDIVISM_EVALUATION', granted: true },
    });
    expect(byAnalyst.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    // An unknown purpose is named in the message as typed, cut short: not whatever length was sent.
    const long = await broker.gql(steward.apiKey, RECORD, {
      input: { datasetId: dataset.id, subjectId: 'P2', purpose: 'X'.repeat(100_000), granted: true },
    });
    expect(long.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    expect(long.errors?.[0].message).toBe(
      `Unknown purpose "${'X'.repeat(64)}…": name one of the purposes defined`,
    );
    expect(await broker.query(`SELECT count(*)::int AS n FROM consent_event`)).toEqual(before);
  });

  it('releases only subjects whose latest consent for the query purpose is granted, in rows and aggregates (property)', async () => {
    const step = fc.record({
      subject: fc.constantFrom(...SUBJECTS),
      purpose: fc.constantFrom(...PURPOSES),
      granted: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 8 }),
        fc.constantFrom(...PURPOSES),
        async (history, purpose) => {
          // The reference model: the latest record per (subject, purpose) wins; none means no consent.
          const model = new Map<string, boolean>();
          for (const s of history) {
            await broker.gqlOk(steward.apiKey, RECORD, {
              input: { datasetId: dataset.id, subjectId: s.subject, purpose: s.purpose, granted: s.granted },
            });
          }
          const rows = await broker.query<{ subject_id: string; purpose: string; granted: boolean }>(
            `SELECT subject_id, purpose, granted FROM consent_current WHERE dataset_id = $1`,
            [dataset.id],
          );
          for (const r of rows) model.set(`${r.subject_id}|${r.purpose}`, r.granted);
          for (const s of history) model.set(`${s.subject}|${s.purpose}`, s.granted);
          const expected = SUBJECTS.filter((s) => model.get(`${s}|${purpose}`) === true).sort();

          const res = await broker.gql(
            analyst.apiKey,
            `{ participation(purpose: ${purpose}, first: 1000) { nodes { participant_id program } } }`,
            undefined,
            '/data/graphql',
          );
          expect(res.errors).toBeUndefined();
          const got = res.data!.participation.nodes.map((n: { participant_id: string }) => n.participant_id);
          expect([...new Set(got)].sort()).toEqual(expected);
          expect(got).toHaveLength(expected.length * 2);

          // Aggregates count the same people: two enrolments per consenting subject.
          const counts = await broker.gql(
            analyst.apiKey,
            `{ total: participation_aggregate(purpose: ${purpose}, groupBy: []) { groups { key count } }
               bySubject: participation_aggregate(purpose: ${purpose}, groupBy: [participant_id]) { groups { key count } } }`,
            undefined,
            '/data/graphql',
          );
          expect(counts.errors).toBeUndefined();
          expect(counts.data!.total.groups).toEqual([{ key: {}, count: expected.length * 2 }]);
          expect(counts.data!.bySubject.groups).toEqual(
            expected.map((s) => ({ key: { participant_id: s }, count: 2 })),
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it('takes an INTEGER subject only as its records write it: a withdrawal as "07" is refused, never a no-op', async () => {
    const numbered = await broker.registerDataset(steward.apiKey, {
      slug: 'numbered_participation',
      title: 'Numbered participation',
      keyField: 'enrollment_id',
      subjectField: 'participant_no',
      fields: [
        { name: 'enrollment_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'participant_no', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
      ],
    });
    await broker.gqlOk(
      steward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: numbered.id, r: [{ enrollment_id: 'E7', participant_no: 7 }] },
    );
    await broker.activateAgreement(steward.apiKey, researchSteward.apiKey, {
      title: 'Numbered, with consent',
      providerAgencyId: cbo.id,
      recipientAgencyId: research.id,
      purposes: ['RECIDIVISM_EVALUATION'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [{ datasetId: numbered.id, fields: [{ name: 'enrollment_id' }], requireConsent: true }],
    });
    const consent = (subjectId: string, granted: boolean) =>
      broker.gql(steward.apiKey, RECORD, {
        input: { datasetId: numbered.id, subjectId, purpose: 'RECIDIVISM_EVALUATION', granted },
      });
    const released = async () => {
      const res = await broker.gql(
        analyst.apiKey,
        `{ numbered_participation(purpose: RECIDIVISM_EVALUATION) { nodes { enrollment_id } } }`,
        undefined,
        '/data/graphql',
      );
      expect(res.errors).toBeUndefined();
      return res.data!.numbered_participation.nodes as { enrollment_id: string }[];
    };
    expect((await consent('7', true)).errors).toBeUndefined();
    expect(await released()).toEqual([{ enrollment_id: 'E7' }]);
    for (const spelling of ['07', ' 7', '7 ', '+7', '7.0', '-0', 'seven']) {
      const res = await consent(spelling, false);
      expect({ spelling, code: res.errors?.[0].extensions?.code }).toEqual({
        spelling,
        code: 'BAD_USER_INPUT',
      });
      const report = await broker.gql(
        steward.apiKey,
        `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) { action } }`,
        { d: numbered.id, s: spelling },
      );
      expect({ spelling, code: report.errors?.[0].extensions?.code }).toEqual({
        spelling,
        code: 'BAD_USER_INPUT',
      });
    }
    expect(
      await broker.query(`SELECT subject_id FROM consent_event WHERE dataset_id = $1 ORDER BY id`, [
        numbered.id,
      ]),
    ).toEqual([{ subject_id: '7' }]);
    expect((await consent('7', false)).errors).toBeUndefined();
    expect(await released()).toEqual([]);
    expect((await consent('-12', true)).errors).toBeUndefined();
  });
});
