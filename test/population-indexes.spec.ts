/**
 * Indexes of an agreement's population (docs/disclosure-control.md, "Timing"): for each row filter in
 * force, the broker builds each index a page or a count may walk, partial on the filter, so that a
 * statement planned for its values walks the population's records only. Without them, a page by key
 * from just before 3,000 records the agreement leaves out reads all 3,000 before its next row, and
 * its time tells the caller they are there. Checked on the plans PostgreSQL runs (EXPLAIN ANALYZE of
 * the broker's own statements, planned for their values and generic), never with a clock.
 */
import { AgreementService, RecordIndexKeeper } from '@broker/agreements';
import { Database } from '@broker/core';
import {
  DataPlaneService,
  PolicyCache,
  aggregateSql,
  exportSql,
  pageSql,
  planIsStable,
} from '@broker/data-plane';
import { perturbationKey } from '@broker/policy';
import { DatasetService, HashLookupIndex, hashTableOf, populationIndexes } from '@broker/registry';
import fc from 'fast-check';
import { LiteralParams } from '../libs/policy/src/sql-builder';
import { type PlanNode, planNodes, TestBroker } from '@broker/testing';

const N = 6000;
/** Keys B02000 to B04999 are the other county's: the agreement leaves them out. */
const outside = (i: number) => i >= 2000 && i < 5000;
const ROWS = Array.from({ length: N }, (_, i) => ({
  id: `B${String(i).padStart(5, '0')}`,
  county: outside(i) ? 'SOUTH' : 'NORTH',
  // Zip 10009 holds 1,000 of the other county's records and 10 of this one's.
  zip: outside(i) ? (i < 3000 ? '10009' : `1000${i % 5}`) : i < 10 ? '10009' : `1000${i % 5}`,
  booked: new Date(Date.UTC(2020, 0, 1) + (i % 1500) * 86_400_000).toISOString().slice(0, 10),
  offense: ['DUI', 'THEFT', 'FRAUD'][i % 3],
  // A name 3,000 records share, all but one outside the population; one of 20 outside and one inside.
  name: outside(i)
    ? i < 5000 - 20
      ? 'COMMON'
      : 'TWENTY'
    : i === 0
      ? 'COMMON'
      : i === 1
        ? 'TWENTY'
        : `N${i}`,
}));

describe('indexes of a population, partial on its row filter', () => {
  let broker: TestBroker;
  let analyst: { apiKey: string };
  let agencyId: string;
  let datasetId: string;
  let rows: string; // ROWS, row filter county = NORTH
  let counts: string; // AGGREGATE_ONLY, the same row filter
  let provider: string;
  let recipientSteward: string;
  let providerAgencyId: string;

  /** The record table's indexes, as their column lists. */
  const indexes = async () =>
    (
      await broker.query<{ def: string }>(
        `SELECT pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'records' AND c.relname = 'bookings' AND i.indisvalid`,
      )
    )
      .map((r) => r.def.replace(/^.* USING btree /, ''))
      .sort();
  const partial = async () => (await indexes()).filter((d) => d.includes(' WHERE '));

  /**
   * The scans of the record table in the plans of a statement: planned for its values (a page whose
   * plan depends on them, and every aggregate), and generic (a prepared page whose plan does not:
   * planIsStable), each run.
   */
  let prepared = 0;
  const scans = async ({ text, values }: { text: string; values: unknown[] }): Promise<PlanNode[][]> =>
    broker.app.get(Database).connection(async (client) => {
      const ofRecords = (plan: PlanNode) =>
        planNodes(plan).filter(
          (n) => n['Relation Name'] === 'bookings' || n['Index Name']?.startsWith('bookings'),
        );
      const custom = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
        values,
      );
      // A statement that binds a list (a HASH filter's values) is planned for its values only here.
      if (values.some((v) => v !== null && typeof v === 'object' && !Buffer.isBuffer(v))) {
        return [ofRecords(custom.rows[0]['QUERY PLAN'][0].Plan), []];
      }
      const name = `population_generic_${++prepared}`;
      await client.query({ name, text, values });
      await client.query(`SET plan_cache_mode = force_generic_plan`);
      try {
        const literals = values.map((v) => {
          if (Buffer.isBuffer(v)) return client.escapeLiteral(`\\x${v.toString('hex')}`);
          if (v !== null && typeof v === 'object') throw new Error('a value these shapes do not bind');
          return client.escapeLiteral(String(v));
        });
        const generic = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE ${name}${literals.length ? `(${literals.join(', ')})` : ''}`,
        );
        return [
          ofRecords(custom.rows[0]['QUERY PLAN'][0].Plan),
          ofRecords(generic.rows[0]['QUERY PLAN'][0].Plan),
        ];
      } finally {
        await client.query(`RESET plan_cache_mode`);
        await client.query(`DEALLOCATE ${name}`);
      }
    });

  /** The plan of a request's one root field, as the broker decides it. */
  const planOf = async (query: string) => {
    const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
    const decision = broker.app.get(DataPlaneService).decide(policy, { query });
    if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
    return decision.plans[0];
  };
  /** The page statement of a request, as the broker runs it. */
  const pageStatement = async (query: string) => {
    return pageSql(await planOf(query), true, agencyId);
  };
  const countStatement = async (query: string) => {
    const plan = await planOf(query);
    if (plan.kind !== 'AGGREGATE') throw new Error('not an aggregate');
    return aggregateSql(plan, perturbationKey(plan.cursor.secret));
  };

  /**
   * How many records a statement read through an index and then dropped (outside the population), in
   * each of its plans (planned for its values, and generic).
   */
  const readOutside = async (statement: { text: string; values: unknown[] }) =>
    (await scans(statement)).map((nodes) =>
      nodes.reduce(
        (sum, n) =>
          sum +
          ((n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) *
            (n['Actual Loops'] ?? 1),
        0,
      ),
    );
  /**
   * How many records an export's COPY read and dropped: its query, run after its settings (the
   * caller's values), in a transaction given back.
   */
  const copyReadOutside = async (query: string) => {
    const { rows: copy } = exportSql(await planOf(query), 'csv', agencyId);
    const select = /^COPY \((.*)\) TO STDOUT/s.exec(copy.copy)![1];
    const plan = await broker.app.get(Database).connection(async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(copy.settings.text, copy.settings.values);
        const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${select}`,
        );
        return rows[0]['QUERY PLAN'][0].Plan;
      } finally {
        await client.query('ROLLBACK');
      }
    });
    return {
      copy: copy.copy,
      outside: planNodes(plan)
        .filter((n) => n['Relation Name'] === 'bookings')
        .reduce((sum, n) => sum + (n['Rows Removed by Filter'] ?? 0) * (n['Actual Loops'] ?? 1), 0),
    };
  };
  /** The indexes the scans of a statement use. */
  const indexesUsed = async (statement: { text: string; values: unknown[] }) =>
    (await scans(statement)).flat().flatMap((n) => (n['Index Name'] ? [n['Index Name']] : []));

  const KEY_PAGE = `{ bookings(purpose: RESEARCH, agreement: "$A", where: { id: { gt: "B01995" } }, orderBy: [{ field: id }], first: 10) { nodes { id } } }`;
  const KEY_DESC = `{ bookings(purpose: RESEARCH, agreement: "$A", where: { id: { lt: "B05003" } }, orderBy: [{ field: id, direction: DESC }], first: 5) { nodes { id } } }`;
  const DATE_PAGE = `{ bookings(purpose: RESEARCH, agreement: "$A", where: { booked: { gte: "2023-06-01" } }, orderBy: [{ field: booked }], first: 10) { nodes { id } } }`;
  const ZIP_PAGE = `{ bookings(purpose: RESEARCH, agreement: "$A", where: { zip: { eq: "10009" } }, first: 20) { nodes { id } } }`;
  const ZIP_COUNT = `{ bookings_aggregate(purpose: RESEARCH, agreement: "$C", where: { zip: { eq: "10009" } }, groupBy: [offense]) { groups { key count } } }`;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'population_indexes' });
    const parties = await broker.sharingParties('Sheriff', 'Research', 'RESEARCH');
    analyst = parties.analyst;
    agencyId = parties.recipientAgency.id;
    const p = parties.providerSteward.apiKey;
    provider = p;
    recipientSteward = parties.recipientSteward.apiKey;
    providerAgencyId = parties.providerAgency.id;
    ({ id: datasetId } = await broker.registerDataset(p, {
      slug: 'bookings',
      title: 'Bookings',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'county', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'zip', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'booked', type: 'DATE', classification: 'NON_SENSITIVE' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'name', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
      ],
    }));
    for (let i = 0; i < N; i += 2000) {
      await broker.gqlOk(
        p,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        { id: datasetId, r: ROWS.slice(i, i + 2000) },
      );
    }
    await broker.gqlOk(
      p,
      `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { title } }`,
      { id: datasetId, input: { indexes: [['zip'], ['booked']] } },
    );
    const agreement = (access: string, fields: (string | { name: string; transform: string })[]) =>
      broker.activateAgreement(p, parties.recipientSteward.apiKey, {
        title: `Bookings of the north county (${access})`,
        providerAgencyId: parties.providerAgency.id,
        recipientAgencyId: parties.recipientAgency.id,
        purposes: ['RESEARCH'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId,
            access,
            ...(access === 'AGGREGATE_ONLY' ? { minCellSize: 5 } : {}),
            fields: fields.map((f) => (typeof f === 'string' ? { name: f } : f)),
            rowFilter: { county: 'NORTH' },
          },
        ],
      });
    rows = await agreement('ROWS', ['id', 'zip', 'booked', { name: 'name', transform: 'HASH' }]);
    counts = await agreement('AGGREGATE_ONLY', ['zip', 'offense']);
    await broker.query(`ANALYZE records.bookings`);
  });
  afterAll(() => broker.close());

  const q = (query: string) => query.replace('$A', rows).replace('$C', counts);

  const WHERE = ` WHERE ((county COLLATE "C") = 'NORTH'::text)`;

  it('are built when the agreement comes into force: the default order, the key and every declared index', async () => {
    // Approval waits for its builds for a while; the keeper's pass finds them all there.
    expect(await broker.app.get(AgreementService).ensureIndexesInForce()).toMatchObject({ failed: 0 });
    // Both agreements hold the same filter: one set of indexes serves them.
    expect(await partial()).toEqual(
      [
        '(_rid, id COLLATE "C")',
        '(booked, _rid, id COLLATE "C")',
        '(id COLLATE "C")',
        '(zip COLLATE "C", _rid, id COLLATE "C")',
      ].map((columns) => `${columns}${WHERE}`),
    );
  });

  it('let every page and count walk the population only: no record outside it is read', async () => {
    for (const query of [KEY_PAGE, KEY_DESC, DATE_PAGE, ZIP_PAGE]) {
      const statement = await pageStatement(q(query));
      expect([query, await readOutside(statement)]).toEqual([query, [0, 0]]);
      expect((await indexesUsed(statement)).every((name) => name.includes('_pp_'))).toBe(true);
    }
    expect((await readOutside(await countStatement(q(ZIP_COUNT))))[0]).toBe(0);
    // The row filter is written in, so that a generic plan proves the predicate too: a page by key
    // under it keeps one plan (Database.read), which walks the population's index.
    const keyPage = await pageStatement(q(KEY_PAGE));
    expect(keyPage.text).toContain(`= 'NORTH'::text`);
    expect(keyPage.values).not.toContain('NORTH');
    expect(planIsStable(await planOf(q(KEY_PAGE)))).toBe(true);
    // The answers are the population's.
    const page = await broker.gql<{ bookings: { nodes: { id: string }[] } }>(
      analyst.apiKey,
      q(KEY_PAGE),
      undefined,
      '/data/graphql',
    );
    expect(page.data!.bookings.nodes.map((n) => n.id)).toEqual([
      'B01996',
      'B01997',
      'B01998',
      'B01999',
      'B05000',
      'B05001',
      'B05002',
      'B05003',
      'B05004',
      'B05005',
    ]);
  });

  it('let an export’s COPY walk the population only too: its row filter written in, the caller’s values as settings', async () => {
    const { copy, outside } = await copyReadOutside(q(KEY_PAGE));
    expect(copy).toContain(`= 'NORTH'::text`);
    expect(copy).not.toContain('B01995');
    expect(outside).toBe(0);
  });

  it('without them, the same statements read the records the agreement leaves out (what the test would miss)', async () => {
    const names = [...(await broker.app.get(DatasetService).populationIndexNames())];
    expect(names).toHaveLength(4);
    for (const name of names) await broker.query(`DROP INDEX records."${name}"`);
    try {
      expect((await readOutside(await pageStatement(q(KEY_PAGE))))[0]).toBeGreaterThanOrEqual(3000);
      expect((await readOutside(await pageStatement(q(ZIP_PAGE))))[0]).toBeGreaterThan(0);
      expect((await readOutside(await countStatement(q(ZIP_COUNT))))[0]).toBeGreaterThan(0);
      expect((await copyReadOutside(q(KEY_PAGE))).outside).toBeGreaterThanOrEqual(3000);
    } finally {
      expect(await broker.app.get(AgreementService).ensureIndexesInForce()).toMatchObject({
        built: 4,
        failed: 0,
      });
    }
    expect(await partial()).toHaveLength(4);
  });

  it('follow the row filters in force: a new filter gets its own, and those of a filter no longer in force are dropped', async () => {
    const keeper = broker.app.get(RecordIndexKeeper);
    const other = await broker.activateAgreement(provider, recipientSteward, {
      title: 'Bookings of both counties since 2023',
      providerAgencyId: providerAgencyId,
      recipientAgencyId: agencyId,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId,
          access: 'ROWS',
          fields: [{ name: 'id' }, { name: 'booked' }],
          rowFilter: { county: { $in: ['NORTH', "SOUTH'S"] }, booked: { $gte: '2023-01-01' } },
        },
      ],
    });
    expect(await keeper.pass()).toMatchObject({ failed: 0 });
    const both = await partial();
    expect(both).toHaveLength(8);
    const theirs = both.filter((d) => !d.endsWith(WHERE));
    expect(
      theirs.every(
        (d) => d.includes("'2023-01-01'::date") && d.includes(`= ANY ('{NORTH,SOUTH''S}'::text[])`),
      ),
    ).toBe(true);
    // Its pages walk its own population's indexes: a range and a list, written in as the statement binds them.
    const DATE_ORDER = `{ bookings(purpose: RESEARCH, agreement: "${other}", orderBy: [{ field: booked }], first: 10) { nodes { id } } }`;
    const statement = await pageStatement(DATE_ORDER);
    expect(await readOutside(statement)).toEqual([0, 0]);
    expect((await indexesUsed(statement)).every((name) => name.includes('_pp_'))).toBe(true);
    await broker.gqlOk(
      recipientSteward,
      `mutation($id: ID!) { revokeAgreement(id: $id, reason: "ended") { id } }`,
      {
        id: other,
      },
    );
    await keeper.pass();
    expect(await partial()).toEqual(both.filter((d) => d.endsWith(WHERE)));
  });

  it('write a filter’s values as literals that PostgreSQL reads back as the values bound (fast-check), and never bytes', async () => {
    const db = broker.app.get(Database);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc
            .string({ unit: 'binary' })
            .filter((t) => !t.includes('\u0000'))
            .map((v) => ({ v, type: 'text' })),
          fc.integer().map((v) => ({ v, type: 'integer' })),
          fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ({ v, type: 'double precision' })),
          fc.boolean().map((v) => ({ v, type: 'boolean' })),
          fc
            .array(
              fc.string({ unit: 'binary' }).filter((t) => !t.includes('\u0000')),
              { maxLength: 5 },
            )
            .map((v) => ({ v, type: 'text[]' })),
        ),
        async ({ v, type }) => {
          const literal = new LiteralParams().add(v, type);
          const rows = await db.connection((client) =>
            client.query<{ same: boolean }>(`SELECT ${literal} IS NOT DISTINCT FROM $1::${type} AS same`, [
              v,
            ]),
          );
          expect(rows.rows[0].same).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect(() => new LiteralParams().add(Buffer.from('key'), 'bytea')).toThrow(/no literal/);
    expect(() => new LiteralParams().add('a\u0000b', 'text')).toThrow(/NUL/);
    expect(() => new LiteralParams().add(Number.NaN, 'double precision')).toThrow();
  });

  describe('lookup tables of HASH names', () => {
    /** A HASH value as the analyst reads it, of the record keyed `id`. */
    const tokenOf = async (id: string) => {
      const res = await broker.gql<{ bookings: { nodes: { name_hash: string }[] } }>(
        analyst.apiKey,
        `{ bookings(purpose: RESEARCH, agreement: "${rows}", where: { id: { eq: "${id}" } }) { nodes { name_hash } } }`,
        undefined,
        '/data/graphql',
      );
      return res.data!.bookings.nodes[0].name_hash;
    };
    const byName = (token: string, first = 10) =>
      `{ bookings(purpose: RESEARCH, agreement: "${rows}", where: { name_hash: { eq: "${token}" } }, first: ${first}) { nodes { id } } }`;

    it('file the population only, and a filter through one reads no record the agreement leaves out', async () => {
      const hashes = broker.app.get(HashLookupIndex);
      const common = await tokenOf('B00000');
      const twenty = await tokenOf('B00001');
      // The first filter asks for the table; built here rather than in the background.
      const first = await pageStatement(q(byName(common)));
      expect(first.hashed).toHaveLength(1);
      const built = await hashes.build(first.hashed[0]);
      // 3,000 NORTH records with a name: none of the SOUTH ones is filed.
      expect(built).toMatchObject({ records: 3000, useful: true, commonValues: 0 });
      const [{ filed }] = await broker.query<{ filed: string }>(
        `SELECT count(*) AS filed FROM hash_key hk JOIN hash_key_scope hs ON hs.id = hk.scope_id
          WHERE hs.agreement_id = $1`,
        [rows],
      );
      expect(Number(filed)).toBe(3000);
      // COMMON has 3,000 records, but one in the population: the table serves it for any page,
      // where, counted over every record, it would be common and hashed in the page's order.
      const table = hashTableOf(rows, { id: datasetId }, first.hashed[0].released, first.hashed[0].rowFilter);
      expect(hashes.serves(table, [common], 10)).toBe(true);
      for (const token of [common, twenty]) {
        const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
        const decision = broker.app.get(DataPlaneService).decide(policy, { query: q(byName(token)) });
        if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
        const statement = pageSql(decision.plans[0], true, agencyId, undefined, hashes);
        expect(statement.text).toContain('hash_key hk');
        expect((await readOutside(statement))[0]).toBe(0);
        const [row] = await broker.query<{ n: string }>(
          `SELECT count(*) AS n FROM (${statement.text}) p`,
          statement.values,
        );
        expect(Number(row.n)).toBe(1);
      }
      // The same through the data plane: the population's one record each.
      const page = await broker.gql<{ bookings: { nodes: { id: string }[] } }>(
        analyst.apiKey,
        q(byName(common)),
        undefined,
        '/data/graphql',
      );
      expect(page.data!.bookings.nodes).toEqual([{ id: 'B00000' }]);
    });

    it('built under another filter (an earlier version, or before populations) are not read, and are built anew', async () => {
      const hashes = broker.app.get(HashLookupIndex);
      const common = await tokenOf('B00000');
      const { hashed } = await pageStatement(q(byName(common)));
      // A table of every record, as the release before populations built it.
      await broker.query(`DELETE FROM hash_key_scope WHERE agreement_id = $1`, [rows]);
      const everyRecord = await hashes.build({ ...hashed[0], rowFilter: null });
      expect(everyRecord).toMatchObject({ records: 6000 });
      const table = hashTableOf(rows, { id: datasetId }, hashed[0].released, hashed[0].rowFilter);
      expect(table.population).toMatch(/^[0-9a-f]{32}$/);
      // A statement asking for the population's table does not read it (its scope is checked in the
      // statement's own snapshot, by population), and still answers right.
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const decision = broker.app.get(DataPlaneService).decide(policy, { query: q(byName(common)) });
      if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
      const forced = pageSql(decision.plans[0], true, agencyId, undefined, {
        serves: () => true,
        want: () => undefined,
      } as never);
      expect(forced.text).toContain('hs.population = $');
      expect(forced.values).toContain(table.population);
      // Without its own table, the filter hashes the population's records only, and looks up only
      // theirs: the name's 2,999 records outside would otherwise each be looked up in the page's
      // index (found in none of the population's, in a time that grows with their number).
      {
        const [custom] = await scans(forced);
        const hashing = custom.filter((n) => n.Alias === 'hr');
        expect(hashing).toHaveLength(1);
        expect(hashing[0]['Actual Rows']).toBe(1);
      }
      const [row] = await broker.query<{ n: string }>(
        `SELECT count(*) AS n FROM (${forced.text}) p`,
        forced.values,
      );
      expect(Number(row.n)).toBe(1);
      // The next build replaces it.
      expect(await hashes.build(hashed[0])).toMatchObject({ records: 3000 });
      const scopes = await broker.query<{ population: string; records: number }>(
        `SELECT population, records::int AS records FROM hash_key_scope WHERE agreement_id = $1`,
        [rows],
      );
      expect(scopes).toEqual([{ population: table.population, records: 3000 }]);
      expect(hashes.serves(table, [common], 10)).toBe(true);
    });

    it('are kept by ingestion for the population only: a record that leaves it is taken out, one that enters filed', async () => {
      const hashes = broker.app.get(HashLookupIndex);
      const common = await tokenOf('B00000');
      const { hashed } = await pageStatement(q(byName(common)));
      await hashes.build(hashed[0]);
      const filed = async () =>
        Number(
          (
            await broker.query<{ n: string }>(
              `SELECT count(*) AS n FROM hash_key hk JOIN hash_key_scope hs ON hs.id = hk.scope_id WHERE hs.agreement_id = $1`,
              [rows],
            )
          )[0].n,
        );
      expect(await filed()).toBe(3000);
      const ingest = (records: Record<string, unknown>[]) =>
        broker.gqlOk(
          provider,
          `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted updated } }`,
          { id: datasetId, r: records },
        );
      // B00000 moves to the other county; B02000 (COMMON, outside) moves in; a new record outside.
      await ingest([
        { ...ROWS[0], county: 'SOUTH' },
        { ...ROWS[2000], county: 'NORTH' },
        { ...ROWS[2001], id: 'B09999', county: 'SOUTH' },
      ]);
      expect(await filed()).toBe(3000);
      const page = await broker.gql<{ bookings: { nodes: { id: string }[] } }>(
        analyst.apiKey,
        q(byName(common)),
        undefined,
        '/data/graphql',
      );
      expect(page.data!.bookings.nodes).toEqual([{ id: 'B02000' }]);
      const [{ n }] = await broker.query<{ n: string }>(
        `SELECT count(*) AS n FROM hash_key hk JOIN hash_key_scope hs ON hs.id = hk.scope_id
           JOIN records.bookings b ON b._rid = hk.rid
          WHERE hs.agreement_id = $1 AND b.county <> 'NORTH'`,
        [rows],
      );
      expect(Number(n)).toBe(0);
      // Put back as they were, for the tests after.
      await ingest([ROWS[0], ROWS[2000]]);
    });
  });

  it('are named by their columns and predicate, and none is asked of a dataset without a filter', () => {
    const shape = {
      slug: 'bookings',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING' },
        { name: 'zip', type: 'STRING' },
      ],
    } as Parameters<typeof populationIndexes>[0];
    const a = populationIndexes(shape, `("bookings"."zip" = 'A'::text)`, [['zip'], ['id']]);
    const b = populationIndexes(shape, `("bookings"."zip" = 'B'::text)`, [['zip']]);
    // The default order, the key, zip (the declared key index is the key's).
    expect(a.map((i) => i.sql(true))).toEqual([
      expect.stringMatching(
        /^CREATE INDEX CONCURRENTLY IF NOT EXISTS "bookings_pp_[0-9a-f]{16}" ON "records"."bookings" \("_rid", "id" COLLATE "C"\) WHERE +\("bookings"."zip" = 'A'::text\)$/,
      ),
      expect.stringMatching(/\("id" COLLATE "C"\) WHERE/),
      expect.stringMatching(/\("zip" COLLATE "C", "_rid", "id" COLLATE "C"\) WHERE/),
    ]);
    // Each writes its predicate at one offset, whatever its columns: PostgreSQL stores it alike.
    expect(new Set(a.map((i) => i.sql(true).indexOf(`("bookings"."zip"`)))).toEqual(new Set([1024]));
    expect(new Set([...a, ...b].map((i) => i.name)).size).toBe(6);
  });
});
