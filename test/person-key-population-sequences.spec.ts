/**
 * personKey lookup tables of a population (libs/linkage/src/person-key-index.ts) across a sequence
 * of changes, each followed by every person's filter answered through the data plane and compared
 * with a model of the records, the run in force and the row filter in force: ingestions that move
 * records in and out of the population (with the table built, and not), an amendment of the row
 * filter (the old table kept by ingestion but never read, the new one built), the filter amended
 * back, a new linkage run that joins other records to other persons, a run coming into force while
 * an ingestion holds the record table (its table left to the clean-up), and an ingestion too large
 * to keep the tables. A filter on a person must return exactly that person's linked records in the
 * population: none missing, none outside it.
 */
import { createHmac } from 'node:crypto';
import { Database } from '@broker/core';
import { PersonKeyIndex, personKeyScope } from '@broker/linkage';
import { type RowFilter, populationOf } from '@broker/policy';
import { keepPersonKeys } from '@broker/registry';
import { TestBroker, withOversightText } from '@broker/testing';

const DATA = '/data/graphql';
const N = 200;
const PERSONS = 25;
const COUNTIES = ['NORTH', 'SOUTH', 'EAST', 'WEST'];
const key = (i: number) => `K${String(i).padStart(3, '0')}`;

type Filter = { county: string } | { county: { $in: string[] } };
const admits = (filter: Filter, county: string | null) =>
  county !== null &&
  (typeof filter.county === 'string' ? filter.county === county : filter.county.$in.includes(county));

describe('personKey lookup tables of a population, across ingestion, amendments and runs', () => {
  let broker: TestBroker;
  let analyst: string;
  let provider: string;
  let recipientSteward: string;
  let providerAgencyId: string;
  let agencyId: string;
  let datasetId: string;
  let agreementId: string;
  let secret: Buffer;
  let index: PersonKeyIndex;
  let version = 1;

  /** The model: each record's county, the run in force's person of each record, the filter in force. */
  const county = new Map<string, string | null>();
  let persons = new Map<string, number>();
  let filter: Filter = { county: 'NORTH' };

  const scope = () => personKeyScope(agencyId, 'RESEARCH');
  const keyOf = (person: number) =>
    createHmac('sha256', createHmac('sha256', secret).update(scope(), 'utf8').digest())
      .update(String(person), 'utf8')
      .digest('hex');
  const expected = (person: number) =>
    [...persons]
      .filter(([k, p]) => p === person && admits(filter, county.get(k) ?? null))
      .map(([k]) => k)
      .sort();
  const answer = async (person: number) => {
    const res = await broker.gql<{ bookings: { nodes: { id: string }[] } }>(
      analyst,
      `{ bookings(purpose: RESEARCH, agreement: "${agreementId}", where: { personKey: { eq: "${keyOf(person)}" } },
           orderBy: [{ field: id }], first: 100) { nodes { id } } }`,
      undefined,
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data!.bookings.nodes.map((n) => n.id);
  };
  /** Every person's filter, against the model. */
  const expectAnswers = async (step: string) => {
    const got: Record<number, string[]> = {};
    const want: Record<number, string[]> = {};
    for (let p = 1; p <= PERSONS + 1; p++) {
      got[p] = await answer(p);
      want[p] = expected(p);
    }
    expect({ step, answers: got }).toEqual({ step, answers: want });
  };
  const ingest = async (changes: [number, string | null][]) => {
    for (const [i, c] of changes) county.set(key(i), c);
    await broker.gqlOk(
      provider,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted updated } }`,
      { id: datasetId, r: changes.map(([i, c]) => ({ id: key(i), county: c, offense: 'DUI' })) },
    );
  };
  /** A run written straight into its tables, in force: `personOf` gives each record's person, or null. */
  const newRun = async (personOf: (i: number) => number | null, current = true) => {
    const [run] = await broker.query<{ id: string }>(
      `INSERT INTO linkage_run (status, trigger) VALUES ('SUCCEEDED', 'MANUAL') RETURNING id`,
    );
    const linked = Array.from({ length: N }, (_, i) => i).filter((i) => personOf(i) !== null);
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT $1, $2, k, p FROM unnest($3::text[], $4::bigint[]) AS u (k, p)`,
      [run.id, datasetId, linked.map(key), linked.map((i) => personOf(i)!)],
    );
    if (current) {
      await broker.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
      persons = new Map(linked.map((i) => [key(i), personOf(i)!]));
    }
    return run.id;
  };
  const amend = async (next: Filter) => {
    version += 1;
    await broker.gqlOk(
      provider,
      `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`,
      { id: agreementId, input: withOversightText(terms(next)) },
    );
    const { approveAgreement } = await broker.gqlOk<{
      approveAgreement: { oversightRequired: boolean; inForceVersion: number | null };
    }>(
      recipientSteward,
      `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { oversightRequired inForceVersion } }`,
      { id: agreementId, v: version },
    );
    if (approveAgreement.inForceVersion !== version) await broker.oversightApprove(agreementId, version);
    filter = next;
  };
  const terms = (rowFilter: Filter) => ({
    title: 'Bookings of some counties',
    providerAgencyId,
    recipientAgencyId: agencyId,
    purposes: ['RESEARCH'],
    validFrom: '2020-01-01T00:00:00Z',
    validUntil: '2099-01-01T00:00:00Z',
    grants: [
      {
        datasetId,
        access: 'ROWS',
        fields: [{ name: 'id' }, { name: 'offense' }, { name: 'county', transform: 'HASH' }],
        rowFilter,
        linkage: true,
      },
    ],
  });
  const rowFilter = () => filter as unknown as RowFilter;
  const table = () => ({ agreementId, scope: scope(), datasetId, rowFilter: rowFilter() });
  /** The agreement's tables: their run (whether in force), population and entries. */
  const tables = () =>
    broker.query<{ current: boolean; population: string; entries: number }>(
      `SELECT s.run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1) AS current, s.population,
              (SELECT count(*) FROM person_key k WHERE k.scope_id = s.id)::int AS entries
         FROM person_key_scope s WHERE s.agreement_id = $1 ORDER BY s.id`,
      [agreementId],
    );
  /** The one table a filter in force reads, for the run in force: the records it should file. */
  const inForce = () => [
    { current: true, population: populationOf(rowFilter()), entries: populationLinked() },
  ];
  /** How many records a table of the filter in force, for the run in force, should file. */
  const populationLinked = () =>
    [...persons.keys()].filter((k) => admits(filter, county.get(k) ?? null)).length;

  beforeAll(async () => {
    process.env.LINKAGE_DEBOUNCE_MS = '86400000';
    broker = await TestBroker.start({ LABEL: 'person_key_sequences' });
    delete process.env.LINKAGE_DEBOUNCE_MS;
    index = broker.app.get(PersonKeyIndex);
    const parties = await broker.sharingParties('Sheriff', 'Research', 'RESEARCH');
    analyst = parties.analyst.apiKey;
    provider = parties.providerSteward.apiKey;
    recipientSteward = parties.recipientSteward.apiKey;
    providerAgencyId = parties.providerAgency.id;
    agencyId = parties.recipientAgency.id;
    ({ id: datasetId } = await broker.registerDataset(provider, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    await ingest(Array.from({ length: N }, (_, i) => [i, COUNTIES[i % 4]] as [number, string]));
    agreementId = await broker.activateAgreement(provider, recipientSteward, terms(filter));
    // Every seventh record is not linked; the others are spread over 25 persons, in every county.
    await newRun((i) => (i % 7 === 6 ? null : 1 + (i % PERSONS)));
    [{ secret }] = await broker.query<{ secret: Buffer }>(`SELECT secret FROM linkage_secret WHERE id = 1`);
  });
  afterAll(() => broker?.close());

  it('answers every person exactly, whatever happened to the records, the filter and the run', async () => {
    await expectAnswers('no table yet');
    // Records move in and out of the population before any table is built.
    await ingest([
      [1, 'NORTH'],
      [4, 'SOUTH'],
      [8, null],
    ]);
    await expectAnswers('moved before the table');
    await index.build(table());
    expect(await tables()).toEqual(inForce());
    await expectAnswers('table built');

    // With the table: in, out, out and back in within one batch's neighbours, a new record.
    await ingest([
      [2, 'NORTH'],
      [1, 'EAST'],
      [12, 'WEST'],
      [4, 'NORTH'],
      [8, 'NORTH'],
    ]);
    await expectAnswers('moved with the table');
    expect(await tables()).toEqual(inForce());

    // The filter amended: the old table is not read (its population is another), and is kept true.
    await amend({ county: { $in: ['NORTH', 'EAST'] } });
    await expectAnswers('amended, old table only');
    await ingest([
      [5, 'EAST'],
      [16, 'SOUTH'],
      [3, 'EAST'],
    ]);
    await expectAnswers('moved after the amendment');
    await index.build(table());
    expect(await tables()).toEqual(inForce());
    await expectAnswers('amended, new table');
    await ingest([
      [6, 'NORTH'],
      [5, 'WEST'],
      [20, 'EAST'],
    ]);
    await expectAnswers('moved with the new table');

    // Amended back: the table of the other population is not read.
    await amend({ county: 'NORTH' });
    await expectAnswers('amended back');
    await ingest([
      [24, 'NORTH'],
      [28, 'EAST'],
    ]);
    await expectAnswers('moved after amending back');
    await index.build(table());
    await expectAnswers('amended back, its table');

    // A new run joins records to other persons: its table is built by the clean-up after it.
    await newRun((i) => (i % 5 === 4 ? null : 1 + ((i * 3) % (PERSONS + 1))));
    await expectAnswers('new run, before its table');
    await index.afterRun();
    expect(await tables()).toEqual(inForce());
    await expectAnswers('new run, its table');
    await ingest([
      [0, 'SOUTH'],
      [9, 'NORTH'],
    ]);
    await expectAnswers('moved in the new run');
  });

  it('answers exactly when a run comes into force while an ingestion holds the record table', async () => {
    expect(await tables()).toEqual(inForce());
    const runId = await newRun((i) => (i % 9 === 8 ? null : 1 + ((i * 7) % PERSONS)), false);
    const db = broker.app.get(Database);
    // An ingestion's lock, held while the run comes into force: the run's table is not built with it.
    await db.connection(async (ingestion) => {
      await ingestion.query('BEGIN');
      await ingestion.query('LOCK TABLE records.bookings IN SHARE ROW EXCLUSIVE MODE');
      try {
        await db.connection(async (run) => {
          await run.query('BEGIN');
          expect(await index.prepareRun(run, runId)).toEqual([]);
          await run.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [runId]);
          await run.query('COMMIT');
        });
      } finally {
        await ingestion.query('ROLLBACK');
      }
    });
    persons = new Map(
      (
        await broker.query<{ k: string; p: string }>(
          `SELECT record_key AS k, person_id::text AS p FROM linkage_person WHERE run_id = $1`,
          [runId],
        )
      ).map((r) => [r.k, Number(r.p)]),
    );
    await expectAnswers('run in force without its table');
    await ingest([
      [13, 'NORTH'],
      [24, 'WEST'],
    ]);
    await expectAnswers('moved before the clean-up');
    await index.afterRun();
    expect(await tables()).toEqual(inForce());
    await expectAnswers('the clean-up built it');

    // An ingestion too large to keep the tables drops them; the answers stay exact.
    await broker.app.get(Database).connection(async (client) => {
      await client.query('BEGIN');
      const upkeep = await keepPersonKeys(
        client,
        { id: datasetId, slug: 'bookings', keyField: 'id', fields: [] },
        10,
        5,
      );
      await upkeep.afterChange(null);
      await client.query('COMMIT');
    });
    await ingest([[17, 'NORTH']]);
    await expectAnswers('tables dropped');
    await index.build(table());
    await expectAnswers('built again');
  });
  it('exports by personKey, ordered by a HASH name, exactly the rows its release lists: all, first, after a cursor', async () => {
    // Several persons, so that the export has rows to order, and ties in the HASH name to break.
    const people = [1, 2, 3, 4, 5, 6].map(keyOf);
    const where = `where: { personKey: { in: ${JSON.stringify(people)} } }`;
    const orderBy = `orderBy: [{ field: county_hash, direction: DESC }]`;
    const walked: string[] = [];
    const cursors: (string | null)[] = [null];
    for (;;) {
      type Page = {
        bookings: { nodes: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string } };
      };
      const res = await broker.gql<Page>(
        analyst,
        `query($after: String) { bookings(purpose: RESEARCH, agreement: "${agreementId}", ${where}, ${orderBy}, first: 3, after: $after) {
             nodes { id } pageInfo { hasNextPage endCursor } } }`,
        { after: cursors[cursors.length - 1] },
        DATA,
      );
      const page = { data: res.data! };
      walked.push(...page.data.bookings.nodes.map((n) => n.id));
      if (!page.data.bookings.pageInfo.hasNextPage) break;
      cursors.push(page.data.bookings.pageInfo.endCursor);
    }
    const inPopulation = [1, 2, 3, 4, 5, 6].flatMap(expected).sort();
    expect([...walked].sort()).toEqual(inPopulation);
    expect(walked.length).toBeGreaterThan(4);
    const firstPage = await broker.gql<{ bookings: { pageInfo: { endCursor: string } } }>(
      analyst,
      `{ bookings(purpose: RESEARCH, agreement: "${agreementId}", ${where}, ${orderBy}, first: 2) { pageInfo { endCursor } } }`,
      undefined,
      DATA,
    );
    const cursor = firstPage.data!.bookings.pageInfo.endCursor;
    for (const [args, rows] of [
      ['', walked],
      [', first: 4', walked.slice(0, 4)],
      [`, after: ${JSON.stringify(cursor)}`, walked.slice(2)],
      [`, first: 3, after: ${JSON.stringify(cursor)}`, walked.slice(2, 5)],
    ] as const) {
      const seq = await broker.auditHeadSeq();
      const res = await broker.http.inject({
        method: 'POST',
        url: '/data/export',
        headers: {
          authorization: `Bearer ${analyst}`,
          accept: 'application/x-ndjson',
          'content-type': 'application/json',
        },
        payload: {
          query: `{ bookings(purpose: RESEARCH, agreement: "${agreementId}", ${where}, ${orderBy}${args}) { nodes { id } } }`,
        },
      });
      expect({ args, status: res.statusCode }).toEqual({ args, status: 200 });
      const streamed = res.body
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { id: string }).id);
      expect({ args, streamed }).toEqual({ args, streamed: rows });
      // The release lists the very rows streamed, and its count says how many.
      const [event] = await broker.query<{ row_count: number; released: string[] | null }>(
        `SELECT e.row_count,
                (SELECT array_agg(t.id ORDER BY t.id) FROM records.bookings t WHERE t."_rid" = ANY (r.rids)) AS released
           FROM audit_event e LEFT JOIN release_record r ON r.audit_seq = e.seq
          WHERE e.seq > $1 AND e.action = 'EXPORT'`,
        [seq],
      );
      expect({ args, ...event }).toEqual({
        args,
        row_count: rows.length,
        released: rows.length ? [...rows].sort() : null,
      });
    }
  });
});
