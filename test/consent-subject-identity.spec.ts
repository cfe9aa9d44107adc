import fc from 'fast-check';
import { TestBroker } from '@broker/testing';

/**
 * Consent, subject access and the records name a subject by one identity: the subject field exactly
 * as ingested. A consent recorded for "U1 " is the consent of the records whose subject is "U1 ",
 * never of those whose subject is "U1", in rows, counts and exports alike.
 */
const DATA = '/data/graphql';
const RECORD = `mutation($input: ConsentInput!) { recordConsent(input: $input) { subjectId granted } }`;
const REPORT = `query($d: ID!, $s: String!) { subjectAccessReport(datasetId: $d, subjectId: $s) { action } }`;
const INGEST = `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`;

// What String#trim, PostgreSQL's btrim or a form field might take off: ASCII and Unicode spaces.
const SPACES = [' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2003', '\u3000', '\ufeff', '\u2028', '\u1680'];

type Row = { k: string; subj: string };

describe('consent and subject access name the subject exactly as stored', () => {
  let broker: TestBroker;
  let steward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };

  const consent = async (subjectId: string, granted: boolean) =>
    (
      await broker.gqlOk(steward.apiKey, RECORD, {
        input: { datasetId: dataset.id, subjectId, purpose: 'RESEARCH', granted },
      })
    ).recordConsent as { subjectId: string; granted: boolean };

  const ingest = (records: Row[]) => broker.gqlOk(steward.apiKey, INGEST, { id: dataset.id, r: records });

  /** The rows released to the analyst, the counts per subject, and the export: each sorted by key. */
  const released = async (keys: (k: string) => boolean, subjects: (s: string) => boolean = () => true) => {
    const res = await broker.gql(
      analyst.apiKey,
      `{ people(purpose: RESEARCH, first: 1000) { nodes { k subj } }
         bySubject: people_aggregate(purpose: RESEARCH, groupBy: [subj]) { groups { key count } } }`,
      undefined,
      DATA,
    );
    expect(res.errors).toBeUndefined();
    const data = res.data as {
      people: { nodes: Row[] };
      bySubject: { groups: { key: { subj: string }; count: number }[] };
    };
    const exported = await broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: {
        authorization: `Bearer ${analyst.apiKey}`,
        accept: 'application/x-ndjson',
        'content-type': 'application/json',
      },
      payload: { query: '{ people(purpose: RESEARCH) { nodes { k subj } } }' },
    });
    expect(exported.statusCode).toBe(200);
    const byKey = (a: Row, b: Row) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0);
    const rows = data.people.nodes.filter((r) => keys(r.k)).sort(byKey);
    return {
      rows,
      // A count for a subject without a released row would be a leak: the counts are of all groups asked for.
      counts: data.bySubject.groups.filter((g) => subjects(g.key.subj)),
      exported: exported.body
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Row)
        .filter((r) => keys(r.k))
        .sort(byKey),
    };
  };

  const report = async (subjectId: string) =>
    (await broker.gqlOk(steward.apiKey, REPORT, { d: dataset.id, s: subjectId })).subjectAccessReport as {
      action: string;
    }[];

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'consent_subject_identity' });
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    steward = parties.providerSteward;
    analyst = parties.analyst;
    dataset = await broker.registerDataset(steward.apiKey, {
      slug: 'people',
      title: 'People',
      keyField: 'k',
      subjectField: 'subj',
      fields: [
        { name: 'k', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'subj', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
      ],
    });
    await broker.activateAgreement(steward.apiKey, parties.recipientSteward.apiKey, {
      title: 'People with consent',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [{ name: 'k' }, { name: 'subj' }],
          requireConsent: true,
          minCellSize: 1,
        },
      ],
    });
  });
  afterAll(() => broker.close());

  it('a consent for "U1 " never releases the row of "U1", who refused (the reported bypass)', async () => {
    await ingest([
      { k: 'U1a', subj: 'U1' },
      { k: 'U1b', subj: 'U1 ' },
    ]);
    const mine = (k: string) => k.startsWith('U1');
    expect(await consent('U1', false)).toEqual({ subjectId: 'U1', granted: false });
    expect(await consent('U1 ', true)).toEqual({ subjectId: 'U1 ', granted: true });
    expect(
      await broker.query(
        `SELECT subject_id, granted FROM consent_current WHERE dataset_id = $1 ORDER BY subject_id`,
        [dataset.id],
      ),
    ).toEqual([
      { subject_id: 'U1', granted: false },
      { subject_id: 'U1 ', granted: true },
    ]);

    let got = await released(mine);
    expect(got.rows).toEqual([{ k: 'U1b', subj: 'U1 ' }]);
    expect(got.exported).toEqual(got.rows);
    expect(got.counts).toEqual([{ key: { subj: 'U1 ' }, count: 1 }]);
    // The page and the export returned "U1 "'s row; nothing of "U1" ever left.
    expect(await report('U1 ')).toEqual([{ action: 'QUERY' }, { action: 'EXPORT' }]);
    expect(await report('U1')).toEqual([]);

    // Each subject's own consent decides its own row.
    await consent('U1 ', false);
    await consent('U1', true);
    got = await released(mine);
    expect(got.rows).toEqual([{ k: 'U1a', subj: 'U1' }]);
    expect(got.exported).toEqual(got.rows);
    expect(got.counts).toEqual([{ key: { subj: 'U1' }, count: 1 }]);
    expect(await report('U1')).toEqual([{ action: 'QUERY' }, { action: 'EXPORT' }]);
    expect(await report('U1 ')).toEqual([{ action: 'QUERY' }, { action: 'EXPORT' }]);

    await consent('U1', false);
    got = await released(mine);
    expect(got.rows).toEqual([]);
    expect(got.exported).toEqual([]);
    expect(got.counts).toEqual([]);
  });

  it('takes " T6", "T4\\t", "T8\\n" and an id of spaces only as they are; refuses only the empty id', async () => {
    await ingest([
      { k: 'T6a', subj: 'T6' },
      { k: 'T6b', subj: ' T6' },
      { k: 'T4a', subj: 'T4' },
      { k: 'T4b', subj: 'T4\t' },
      { k: 'T8a', subj: 'T8' },
      { k: 'T8b', subj: 'T8\n' },
      { k: 'Wa', subj: '   ' },
    ]);
    for (const subjectId of [' T6', 'T4\t', 'T8\n', '   ']) {
      expect(await consent(subjectId, true)).toEqual({ subjectId, granted: true });
    }
    const got = await released((k) => /^(T|W)/.test(k));
    expect(got.rows).toEqual([
      { k: 'T4b', subj: 'T4\t' },
      { k: 'T6b', subj: ' T6' },
      { k: 'T8b', subj: 'T8\n' },
      { k: 'Wa', subj: '   ' },
    ]);
    expect(got.exported).toEqual(got.rows);
    expect(got.counts).toEqual(
      expect.arrayContaining(got.rows.map((r) => ({ key: { subj: r.subj }, count: 1 }))),
    );
    expect(got.counts).toHaveLength(got.rows.length);
    for (const s of ['T6', 'T4', 'T8']) expect(await report(s)).toEqual([]);
    for (const s of [' T6', 'T4\t', 'T8\n', '   ']) {
      expect(await report(s)).toEqual([{ action: 'QUERY' }, { action: 'EXPORT' }]);
    }
    const empty = await broker.gql(steward.apiKey, RECORD, {
      input: { datasetId: dataset.id, subjectId: '', purpose: 'RESEARCH', granted: true },
    });
    expect(empty.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
    // What was consented for these, withdrawn, so the property below starts from a known state.
    for (const s of [' T6', 'T4\t', 'T8\n', '   ']) await consent(s, false);
  });

  it('releases, counts, exports and reports each spelling of a subject by its own consent only (property)', async () => {
    let run = 0;
    const variant = fc.record({
      before: fc.array(fc.constantFrom(...SPACES), { maxLength: 2 }).map((s) => s.join('')),
      after: fc.array(fc.constantFrom(...SPACES), { maxLength: 2 }).map((s) => s.join('')),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(variant, {
          minLength: 2,
          maxLength: 5,
          selector: (v) => JSON.stringify(v),
        }),
        fc.array(fc.record({ which: fc.nat(), granted: fc.boolean() }), { maxLength: 8 }),
        async (variants, history) => {
          // One base per run, so that each run's subjects and keys are its own.
          const tag = `R${run++}-`;
          const subjects = variants.map((v) => `${v.before}S${tag}${v.after}`);
          // The bare base always has a record: the subject trimming would have turned the others into.
          if (!subjects.includes(`S${tag}`)) subjects.push(`S${tag}`);
          await ingest(subjects.map((subj, i) => ({ k: `${tag}${i}`, subj })));
          const model = new Map<string, boolean>();
          for (const step of history) {
            const subjectId = subjects[step.which % subjects.length];
            expect(await consent(subjectId, step.granted)).toEqual({ subjectId, granted: step.granted });
            model.set(subjectId, step.granted);
          }
          const expected = subjects
            .map((subj, i) => ({ k: `${tag}${i}`, subj }))
            .filter((r) => model.get(r.subj) === true)
            .sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));

          const got = await released(
            (k) => k.startsWith(tag),
            (s) => s.includes(`S${tag}`),
          );
          expect(got.rows).toEqual(expected);
          expect(got.exported).toEqual(expected);
          expect(new Map(got.counts.map((g) => [g.key.subj, g.count]))).toEqual(
            new Map(expected.map((r) => [r.subj, 1])),
          );
          // Each spelling's report: the page and the export when its own consent was in force.
          for (const subj of subjects) {
            expect({ subj, report: await report(subj) }).toEqual({
              subj,
              report: model.get(subj) === true ? [{ action: 'QUERY' }, { action: 'EXPORT' }] : [],
            });
          }
        },
      ),
      { numRuns: 25 },
    );
  });
});
