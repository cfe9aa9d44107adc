/**
 * personKey lookup tables of a population (libs/linkage/src/person-key-index.ts) across a sequence
 * of changes, each followed by every person's filter answered through the data plane and compared
 * with a model of the records, the run in force and the row filter in force: ingestions that move
 * records in and out of the population (with the table built, and not), an amendment of the row
 * filter (the old table kept by ingestion but never read, the new one built), the filter amended
 * back, a new linkage run that joins other records to other persons, a run coming into force while
 * an ingestion holds the record table (its table left to the clean-up), and an ingestion too large
 * to keep the tables. A filter on a person must return exactly that person's linked records in the
 * population: none missing, none outside it. Then amendments that leave tables no grant in force
 * reads (a row filter changed, a purpose dropped, linkage or a grant removed): the sweep drops them,
 * entries and all, skips one an ingestion holds, and keeps the tables of the grants and purposes
 * still in force, while the answers stay exact.
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
  /** Amends the agreement to `input` and brings the version into force. */
  const amendTo = async (input: ReturnType<typeof terms>) => {
    version += 1;
    await broker.gqlOk(
      provider,
      `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`,
      { id: agreementId, input: withOversightText(input) },
    );
    const { approveAgreement } = await broker.gqlOk<{
      approveAgreement: { oversightRequired: boolean; inForceVersion: number | null };
    }>(
      recipientSteward,
      `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { oversightRequired inForceVersion } }`,
      { id: agreementId, v: version },
    );
    if (approveAgreement.inForceVersion !== version) await broker.oversightApprove(agreementId, version);
  };
  const amend = async (next: Filter) => {
    await amendTo(terms(next));
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
      } as Record<string, unknown>,
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

  it('drops the tables no grant in force reads: a row filter changed, a purpose dropped, linkage or the grant removed', async () => {
    await broker.definePurposes('EVALUATION');
    const { id: arrestsId } = await broker.registerDataset(provider, {
      slug: 'arrests',
      title: 'Arrests',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    const ARRESTS = 20;
    await broker.gqlOk(
      provider,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      {
        id: arrestsId,
        r: Array.from({ length: ARRESTS }, (_, i) => ({ id: `A${i}`, county: COUNTIES[i % 4] })),
      },
    );
    // Every arrest linked in the run in force.
    await broker.query(
      `INSERT INTO linkage_person (run_id, dataset_id, record_key, person_id)
       SELECT ls.current_run_id, $1, 'A' || i, 1 + i % 5 FROM linkage_state ls, generate_series(0, $2 - 1) i
        WHERE ls.id = 1`,
      [arrestsId, ARRESTS],
    );
    /** The agreement's terms: the bookings grant (the filter in force), the arrests grant if any. */
    const withArrests = (purposes: string[], arrests: { linkage: boolean } | null) => {
      const base = terms(filter);
      return {
        ...base,
        purposes,
        grants: arrests
          ? [
              ...base.grants,
              { datasetId: arrestsId, access: 'ROWS', fields: [{ name: 'id' }], rowFilter: null, ...arrests },
            ]
          : base.grants,
      };
    };
    /** The table a statement on `dataset` for `purpose` reads under the version in force. */
    const tableFor = (purpose: string, dataset: 'bookings' | 'arrests') => ({
      agreementId,
      scope: personKeyScope(agencyId, purpose),
      datasetId: dataset === 'bookings' ? datasetId : arrestsId,
      rowFilter: dataset === 'bookings' ? rowFilter() : null,
    });
    /** The agreement's tables (all of the run in force): purpose, dataset, population, entries. */
    const kept = () =>
      broker.query<{ id: number; purpose: string; dataset: string; population: string; entries: number }>(
        `SELECT s.id, split_part(s.scope, '/', 2) AS purpose, d.slug AS dataset, s.population,
                (SELECT count(*) FROM person_key k WHERE k.scope_id = s.id)::int AS entries
           FROM person_key_scope s JOIN dataset d ON d.id = s.dataset_id
          WHERE s.agreement_id = $1 AND s.run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1)
          ORDER BY d.slug, s.scope`,
        [agreementId],
      );
    const bookings = (purpose: string) => ({
      id: expect.any(Number),
      purpose,
      dataset: 'bookings',
      population: populationOf(rowFilter()),
      entries: populationLinked(),
    });
    const arrests = (purpose: string) => ({
      id: expect.any(Number),
      purpose,
      dataset: 'arrests',
      population: '',
      entries: ARRESTS,
    });
    /** No entry is left of the tables `ids` (dropped with their scope rows). */
    const expectGone = async (ids: number[]) => {
      expect(ids.length).toBeGreaterThan(0);
      const [left] = await broker.query<{ scopes: number; entries: number }>(
        `SELECT (SELECT count(*) FROM person_key_scope WHERE id = ANY ($1))::int AS scopes,
                (SELECT count(*) FROM person_key WHERE scope_id = ANY ($1))::int AS entries`,
        [ids],
      );
      expect(left).toEqual({ scopes: 0, entries: 0 });
    };
    const idsOf = async (dataset: string, purpose?: string) =>
      (await kept())
        .filter((t) => t.dataset === dataset && (!purpose || t.purpose === purpose))
        .map((t) => t.id);

    // Two purposes, two grants with linkage: every table is read, none goes.
    await amendTo(withArrests(['EVALUATION', 'RESEARCH'], { linkage: true }));
    for (const purpose of ['EVALUATION', 'RESEARCH']) {
      await index.build(tableFor(purpose, 'bookings'));
      await index.build(tableFor(purpose, 'arrests'));
    }
    expect(await index.sweep()).toBe(0);
    expect(await kept()).toEqual([
      arrests('EVALUATION'),
      arrests('RESEARCH'),
      bookings('EVALUATION'),
      bookings('RESEARCH'),
    ]);
    await expectAnswers('two purposes, two grants');

    // (c) The row filter changed: the bookings tables of the old population go after the run's
    // clean-up (nothing else to do after it), the arrests tables stay.
    let stale = await idsOf('bookings');
    filter = { county: { $in: ['NORTH', 'WEST'] } };
    await amendTo(withArrests(['EVALUATION', 'RESEARCH'], { linkage: true }));
    expect(await index.afterRun()).toEqual({ built: [], dropped: 2 });
    await expectGone(stale);
    expect(await kept()).toEqual([arrests('EVALUATION'), arrests('RESEARCH')]);
    await expectAnswers('row filter changed, its tables dropped');
    for (const purpose of ['EVALUATION', 'RESEARCH']) await index.build(tableFor(purpose, 'bookings'));
    expect(await kept()).toEqual([
      arrests('EVALUATION'),
      arrests('RESEARCH'),
      bookings('EVALUATION'),
      bookings('RESEARCH'),
    ]);
    await expectAnswers('row filter changed, its tables built');

    // (b) A purpose dropped: its tables go, of both datasets.
    stale = (await kept()).filter((t) => t.purpose === 'EVALUATION').map((t) => t.id);
    await amendTo(withArrests(['RESEARCH'], { linkage: true }));
    expect(await index.sweep()).toBe(2);
    await expectGone(stale);
    expect(await kept()).toEqual([arrests('RESEARCH'), bookings('RESEARCH')]);
    await expectAnswers('purpose dropped');

    // (d) Linkage removed from the arrests grant: its table goes, but not while an ingestion keeps
    // it (its scope row locked): the sweep does not wait, and the next one drops it.
    stale = await idsOf('arrests');
    await amendTo(withArrests(['RESEARCH'], { linkage: false }));
    await broker.app.get(Database).connection(async (ingestion) => {
      await ingestion.query('BEGIN');
      await ingestion.query(`SELECT id FROM person_key_scope WHERE id = ANY ($1) FOR KEY SHARE`, [stale]);
      try {
        expect(await index.sweep()).toBe(0);
        expect(await kept()).toEqual([arrests('RESEARCH'), bookings('RESEARCH')]);
      } finally {
        await ingestion.query('ROLLBACK');
      }
    });
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    expect(await kept()).toEqual([bookings('RESEARCH')]);
    await expectAnswers('linkage removed from another grant');

    // (a) The arrests grant (with linkage again, its table built) removed: its table goes.
    await amendTo(withArrests(['RESEARCH'], { linkage: true }));
    await index.build(tableFor('RESEARCH', 'arrests'));
    expect(await index.sweep()).toBe(0);
    expect(await kept()).toEqual([arrests('RESEARCH'), bookings('RESEARCH')]);
    stale = await idsOf('arrests');
    await amendTo(withArrests(['RESEARCH'], null));
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    expect(await kept()).toEqual([bookings('RESEARCH')]);
    await expectAnswers('grant removed');
    // Nothing else goes at the next sweep, nor with the run's clean-up.
    expect(await index.sweep()).toBe(0);
    expect(await index.afterRun()).toEqual({ built: [], dropped: 0 });
    expect(await kept()).toEqual([bookings('RESEARCH')]);
  });
});
