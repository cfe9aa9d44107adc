/**
 * Consent in the population's indexes (docs/disclosure-control.md, "Timing"): each record carries its
 * subject's consent in force (`_consent`, kept by the database's triggers as consent and records
 * change: migration record-consent), and the indexes of a population that requires consent are
 * partial on it, so that a page walks consenting subjects' records only. Before, a record in the row
 * filter whose subject withdrew consent was fetched and then dropped, and a lookup of its key took
 * longer than one of a key that does not exist: the time told that the record exists. Checked on the
 * plans PostgreSQL runs (EXPLAIN ANALYZE of the broker's own statement), never with a clock; the
 * column is checked against the consent in force after every kind of change, and under concurrent
 * consent and ingestion.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { Database } from '@broker/core';
import { DataPlaneService, PolicyCache, pageSql } from '@broker/data-plane';
import { type PlanNode, planNodes, TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const RECORD = `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`;
const SUBJECTS = 1500;
const subject = (i: number) => `S${String(i).padStart(4, '0')}`;
/** Two records per subject, E0000 to E2999; every third subject's are the other county's. */
const ROWS = Array.from({ length: SUBJECTS * 2 }, (_, i) => ({
  id: `E${String(i).padStart(4, '0')}`,
  person: subject(Math.floor(i / 2)),
  county: Math.floor(i / 2) % 3 === 2 ? 'SOUTH' : 'NORTH',
}));

describe('consent in the indexes of a population that requires it', () => {
  let broker: TestBroker;
  let analyst: string;
  let steward: string;
  let agencyId: string;
  let datasetId: string;
  let agreementId: string;

  const consent = (person: string, granted: boolean, purpose = 'RESEARCH') =>
    broker.gqlOk(steward, RECORD, { input: { datasetId, subjectId: person, purpose, granted } });
  const ingest = (records: Record<string, unknown>[]) =>
    broker.gqlOk(
      steward,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted updated } }`,
      { id: datasetId, r: records },
    );
  /** Records whose `_consent` is not the purposes their subject's consent in force grants. */
  const stale = async () =>
    (
      await broker.query<{ id: string }>(
        `SELECT t.id FROM records.enrolments t
          WHERE t._consent IS DISTINCT FROM (
            SELECT ',' || string_agg(c.purpose, ',' ORDER BY c.purpose) || ',' FROM consent_current c
             WHERE c.dataset_id = $1 AND c.subject_id = t.person::text AND c.granted)
          ORDER BY t.id`,
        [datasetId],
      )
    ).map((r) => r.id);
  /** The subjects whose consent to RESEARCH is in force. */
  const consenting = async () =>
    new Set(
      (
        await broker.query<{ s: string }>(
          `SELECT subject_id AS s FROM consent_current WHERE dataset_id = $1 AND purpose = 'RESEARCH' AND granted`,
          [datasetId],
        )
      ).map((r) => r.s),
    );
  const page = (args: string) =>
    `{ enrolments(purpose: RESEARCH, agreement: "${agreementId}", ${args}) { nodes { id } } }`;
  const statementOf = async (query: string) => {
    const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
    const decision = broker.app.get(DataPlaneService).decide(policy, { query });
    if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
    return pageSql(decision.plans[0], true, agencyId);
  };
  /** The scans of the broker's statement, run: the record table's, and the consent lookups. */
  const scansOf = async (query: string) => {
    const { text, values } = await statementOf(query);
    const [{ plan }] = await broker.app.get(Database).connection(async (client) => {
      const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
        values,
      );
      return [{ plan: rows[0]['QUERY PLAN'][0].Plan }];
    });
    return planNodes(plan)
      .filter((n) => /Scan/.test(n['Node Type']))
      .map((n) => ({
        scan: `${n['Node Type']} ${n['Index Name'] ?? n['Relation Name'] ?? ''}`,
        rows: (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1),
        loops: n['Actual Loops'] ?? 0,
        dropped:
          ((n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) *
          (n['Actual Loops'] ?? 1),
      }));
  };
  const answer = async (query: string) => {
    const res = await broker.gql<{ enrolments: { nodes: { id: string }[] } }>(
      analyst,
      query,
      undefined,
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data!.enrolments.nodes.map((n) => n.id);
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'consent_population' });
    const parties = await broker.sharingParties('Programs', 'Research', 'RESEARCH', 'SUPERVISION');
    analyst = parties.analyst.apiKey;
    steward = parties.providerSteward.apiKey;
    agencyId = parties.recipientAgency.id;
    ({ id: datasetId } = await broker.registerDataset(steward, {
      slug: 'enrolments',
      title: 'Enrolments',
      keyField: 'id',
      subjectField: 'person',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    // Consent before the records (every even subject's, written in bulk as a migration would; the
    // triggers keep the records alike): the records take it as they are ingested.
    await consent(subject(0), true);
    await broker.query(
      `WITH e AS (
         INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
         SELECT $1, s, 'RESEARCH', true, (SELECT recorded_by FROM consent_event WHERE dataset_id = $1 LIMIT 1)
           FROM unnest($2::text[]) AS s RETURNING id, subject_id)
       INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id)
       SELECT $1, 'RESEARCH', subject_id, true, id FROM e`,
      [datasetId, Array.from({ length: SUBJECTS / 2 - 1 }, (_, i) => subject(2 * (i + 1)))],
    );
    for (let i = 0; i < ROWS.length; i += 1000) await ingest(ROWS.slice(i, i + 1000));
    agreementId = await broker.activateAgreement(steward, parties.recipientSteward.apiKey, {
      title: 'Enrolments of the north county, with consent',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: agencyId,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          access: 'ROWS',
          fields: [{ name: 'id' }, { name: 'county' }],
          rowFilter: { county: 'NORTH' },
          requireConsent: true,
        },
      ],
    });
    // Subject 4 withdraws; 1 and 3 consent to another purpose only.
    await consent(subject(4), false);
    await consent(subject(1), true, 'SUPERVISION');
    await consent(subject(3), true, 'SUPERVISION');
    await broker.query(`ANALYZE records.enrolments`);
  });
  afterAll(() => broker?.close());

  it('builds the indexes of the consenting population, partial on the row filter and the consent', async () => {
    const indexes = await broker.query<{ def: string }>(
      `SELECT indexdef AS def FROM pg_indexes WHERE schemaname = 'records' AND tablename = 'enrolments'
          AND indexname LIKE 'enrolments\\_pp\\_%' ORDER BY indexname`,
    );
    const withConsent = indexes.filter((i) => i.def.includes(`strpos(_consent, ',RESEARCH,'::text) > 0`));
    // The default order's and the key's, each partial on the filter and the purpose's consent.
    expect(withConsent).toHaveLength(2);
    for (const { def } of withConsent) expect(def).toContain(`'NORTH'::text`);
  });

  it('keeps each record its subject consent in force, whatever changes it', async () => {
    expect(await stale()).toEqual([]);
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM records.enrolments WHERE strpos(_consent, ',RESEARCH,') > 0`,
    );
    expect(n).toBe((SUBJECTS / 2 - 1) * 2);
    expect(
      await broker.query(
        `SELECT id, _consent FROM records.enrolments WHERE person IN ('S0001', 'S0004') ORDER BY id`,
      ),
    ).toEqual([
      { id: 'E0002', _consent: ',SUPERVISION,' },
      { id: 'E0003', _consent: ',SUPERVISION,' },
      { id: 'E0008', _consent: null },
      { id: 'E0009', _consent: null },
    ]);
    // A record moved to another subject takes that subject's consent; a new record its own.
    await ingest([
      { id: 'E0000', person: 'S0001', county: 'NORTH' },
      { id: 'E9000', person: 'S0002', county: 'NORTH' },
    ]);
    expect(
      await broker.query(
        `SELECT id, _consent FROM records.enrolments WHERE id IN ('E0000', 'E9000') ORDER BY id`,
      ),
    ).toEqual([
      { id: 'E0000', _consent: ',SUPERVISION,' },
      { id: 'E9000', _consent: ',RESEARCH,' },
    ]);
    // Consent rows deleted (as retention does for destroyed subjects): their records consent to nothing.
    await broker.query(`DELETE FROM consent_current WHERE dataset_id = $1 AND subject_id = 'S0001'`, [
      datasetId,
    ]);
    expect(await stale()).toEqual([]);
    await ingest([{ id: 'E0000', person: 'S0000', county: 'NORTH' }]);
    await consent('S0001', true, 'SUPERVISION');
    expect(await stale()).toEqual([]);
  });

  it('writes each record ingested with its consent, not once more afterwards', async () => {
    // Dead row versions of the record table: a record written, then given its consent, leaves one.
    await broker.query(`CREATE EXTENSION IF NOT EXISTS pgstattuple`);
    await broker.query(`VACUUM records.enrolments`);
    const dead = async () =>
      (
        await broker.query<{ n: number }>(
          `SELECT dead_tuple_count::int AS n FROM pgstattuple('records.enrolments')`,
        )
      )[0].n;
    expect(await dead()).toBe(0);
    // 40 new records of consenting subjects (even) and not (odd), into a table with records.
    const fresh = Array.from({ length: 40 }, (_, i) => ({
      id: `N${i}`,
      person: subject(10 + i),
      county: 'NORTH',
    }));
    await ingest(fresh);
    expect(await dead()).toBe(0);
    expect(await stale()).toEqual([]);
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM records.enrolments WHERE id LIKE 'N%' AND strpos(_consent, ',RESEARCH,') > 0`,
    );
    expect(n).toBe(20);
  });

  it('keeps it under any sequence of consent changes and ingestions (fast-check)', async () => {
    const person = fc.integer({ min: 1400, max: 1419 }).map(subject);
    const change = fc.oneof(
      fc.record({
        kind: fc.constant('consent' as const),
        person,
        granted: fc.boolean(),
        purpose: fc.constantFrom('RESEARCH', 'SUPERVISION'),
      }),
      fc.record({
        kind: fc.constant('record' as const),
        id: fc.integer({ min: 2800, max: 2839 }).map((i) => `E${String(i).padStart(4, '0')}`),
        person,
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 6 }), async (changes) => {
        for (const c of changes) {
          if (c.kind === 'consent') await consent(c.person, c.granted, c.purpose);
          else await ingest([{ id: c.id, person: c.person, county: 'NORTH' }]);
        }
        expect(await stale()).toEqual([]);
      }),
      { numRuns: 25, seed: 20261208 },
    );
  });

  it('never fetches the record of a subject who does not consent: its key reads as one that does not exist', async () => {
    // E0008: subject 4's, in the row filter, consent withdrawn. E0002: subject 1's, consent to another
    // purpose only. E8888: no record. Each is found in no index of the population: none is fetched.
    const withdrawn = await scansOf(page(`where: { id: { eq: "E0008" } }`));
    const otherPurpose = await scansOf(page(`where: { id: { eq: "E0002" } }`));
    const none = await scansOf(page(`where: { id: { eq: "E8888" } }`));
    expect(withdrawn).toEqual(none);
    expect(otherPurpose).toEqual(none);
    const records = none.filter((s) => s.scan.includes('enrolments'));
    expect(records.length).toBeGreaterThan(0);
    for (const s of records) expect({ rows: s.rows, dropped: s.dropped }).toEqual({ rows: 0, dropped: 0 });
    // The consent in force is looked up for none of them.
    expect(none.filter((s) => s.scan.includes('consent_current'))).toEqual(
      none.filter((s) => s.scan.includes('consent_current') && s.loops === 0),
    );
    // A consenting subject's record is found, and released.
    expect(await answer(page(`where: { id: { eq: "E0012" } }`))).toEqual(['E0012']);
    expect(await answer(page(`where: { id: { eq: "E0008" } }`))).toEqual([]);
  });

  it('walks only consenting records for an ordered page, and answers as the consent in force', async () => {
    const query = page(`orderBy: [{ field: id }], where: { id: { gte: "E0004", lt: "E0100" } }, first: 10`);
    const scans = await scansOf(query);
    const records = scans.filter((s) => s.scan.includes('enrolments'));
    expect(records.length).toBeGreaterThan(0);
    const allowed = await consenting();
    const inRange = ROWS.filter(
      (r) => r.id >= 'E0004' && r.id < 'E0100' && r.county === 'NORTH' && allowed.has(r.person),
    ).map((r) => r.id);
    // No record read and dropped, by its scan or by the consent's join above it: the records read are
    // consenting subjects' only (a walk of an index of the consenting population, which PostgreSQL
    // may read to the end of the range for a join), 30 of the 64 the row filter admits there.
    for (const s of records) expect(s.dropped).toBe(0);
    expect(inRange).toHaveLength(30);
    expect(records.reduce((sum, s) => sum + s.rows, 0)).toBeLessThanOrEqual(inRange.length);
    expect(await answer(query)).toEqual(inRange.slice(0, 10));
  });

  /** A transaction on a connection of its own, for the concurrent changes below. */
  const session = async (): Promise<{ client: Client; done: () => Promise<void> }> => {
    const client = new Client({ connectionString: broker.config.DATABASE_URL });
    await client.connect();
    return { client, done: () => client.end() };
  };

  it('gives a record ingested while its subject consents the consent, whichever commits first', async () => {
    const [{ user }] = await broker.query<{ user: string }>(
      `SELECT id AS user FROM app_user WHERE role = 'STEWARD' ORDER BY created_at LIMIT 1`,
    );
    const grant = (client: Client, person: string) =>
      client.query(
        `WITH e AS (INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
                    VALUES ($1, $2, 'RESEARCH', true, $3) RETURNING id)
         INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id)
         SELECT $1, 'RESEARCH', $2, true, id FROM e
         ON CONFLICT (dataset_id, purpose, subject_id) DO UPDATE SET granted = true, event_id = excluded.event_id`,
        [datasetId, person, user],
      );
    const insert = (client: Client, id: string, person: string) =>
      client.query(`INSERT INTO records.enrolments (id, person, county) VALUES ($1, $2, 'NORTH')`, [
        id,
        person,
      ]);
    for (const consentFirst of [true, false]) {
      const person = consentFirst ? 'S9201' : 'S9202';
      const id = consentFirst ? 'E9201' : 'E9202';
      const a = await session();
      const b = await session();
      try {
        await a.client.query('BEGIN');
        await b.client.query('BEGIN');
        // The first change takes the dataset's lock in its trigger; the second waits for it in its own.
        if (consentFirst) await grant(a.client, person);
        else await insert(b.client, id, person);
        const second = consentFirst ? insert(b.client, id, person) : grant(a.client, person);
        let settled = false;
        void second.then(() => (settled = true));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(settled).toBe(false);
        await (consentFirst ? a : b).client.query('COMMIT');
        await second;
        await (consentFirst ? b : a).client.query('COMMIT');
      } finally {
        await a.done();
        await b.done();
      }
      expect(await broker.query(`SELECT _consent FROM records.enrolments WHERE id = $1`, [id])).toEqual([
        { _consent: ',RESEARCH,' },
      ]);
    }
    expect(await stale()).toEqual([]);
  });
});
