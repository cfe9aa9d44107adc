import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Client } from 'pg';
import {
  FieldTransform,
  SqlParams,
  keyPrefixOf,
  keyPrefixSql,
  keyPrefixesSql,
  releasedExpression,
  releasedField,
} from '@broker/policy';
import {
  DatasetService,
  HashLookupIndex,
  RetentionService,
  hashLookupCommonAbove,
  hashLookupFiledUpTo,
  hashLookupServesUpTo,
  hashLookupSql,
  keepHashLookups,
} from '@broker/registry';
import { Database } from '@broker/core';
import { TestBroker, withOversightText } from '@broker/testing';

const DATA = '/data/graphql';
const WINDOW = { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };
const RECORDS = 1200;

/** The records' values, written here: a near-unique identifier, a two-valued sex, a date. */
const ssnOf = (i: number) => `S${String(i % 1000).padStart(4, '0')}`; // two records for the first 200
const sexOf = (i: number) => (i % 2 ? 'F' : 'M');
/** Old enough for retention to destroy the first tenth, recent for the rest. */
const releasedOn = (i: number) => (i < RECORDS / 10 ? '2001-02-03' : '2099-06-07');
const clientId = (i: number) => `C${String(i).padStart(5, '0')}`;

/**
 * The lookup tables of HASH names (libs/registry/src/dataset/hash-lookup.ts): a filter on a hashed
 * name answers the same records whether its table is built, dropped since, or not worth building,
 * checked against HMACs computed here with Node's crypto from the agreement's key, not with the
 * broker's SQL. Every change of the records drops the tables; the key is in no catalog object.
 */
describe('HASH lookup tables', () => {
  let broker: TestBroker;
  let pg: Client;
  let index: HashLookupIndex;
  let key: Buffer;
  let analyst: string;
  let steward: string;
  let recipientStewardKey: string;
  let clients: { id: string };
  let agreementId: string;
  /** Each record's values, as the dataset holds them now. */
  let rows: Map<string, { ssn: string; sex: string; released_on: string }>;

  const hmac = (value: string) => createHmac('sha256', key).update(value, 'utf8').digest('hex');
  /** The records whose `field`'s HMAC is one of `hashes`: the truth, from Node's crypto. */
  const truth = (field: 'ssn' | 'sex', hashes: string[]) =>
    [...rows]
      .filter(([, r]) => hashes.includes(hmac(r[field])))
      .map(([id]) => id)
      .sort();
  const filter = async (
    name: 'ssn_hash' | 'sex_hash',
    hashes: string[],
    op: 'eq' | 'in' = 'in',
    first = 1000,
    /** Ordered by client_id; else in the default order, the row id's. */
    ordered = true,
  ) => {
    const [declared, condition, variables] =
      op === 'in'
        ? ['$v: [String!]!', '{ in: $v }', { v: hashes }]
        : ['$v: String!', '{ eq: $v }', { v: hashes[0] }];
    const res = await broker.gql(
      analyst,
      `query(${declared}) { clients(purpose: PROGRAM_EVALUATION, first: ${first},
          where: { ${name}: ${condition} }${ordered ? ', orderBy: [{ field: client_id }]' : ''}) {
          nodes { client_id } } }`,
      variables,
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return (res.data as { clients: { nodes: { client_id: string }[] } }).clients.nodes
      .map((n) => n.client_id)
      .sort();
  };
  /** The ids an export of the records whose ssn's HMAC is one of `asked` holds, sorted. */
  const exported = async (asked: string[]) => {
    const res = await broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: {
        authorization: `Bearer ${analyst}`,
        accept: 'text/csv',
        'content-type': 'application/json',
      },
      payload: {
        query: `{ clients(purpose: PROGRAM_EVALUATION, where: { ssn_hash: { in: ${JSON.stringify(asked)} } },
                  orderBy: [{ field: client_id }]) { nodes { client_id } } }`,
      },
    });
    expect(res.statusCode).toBe(200);
    return res.body
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => JSON.parse(line) as string)
      .sort();
  };
  /** The count of the records whose ssn's HMAC is one of `asked`, and its noise. */
  const counted = async (asked: string[]) => {
    const res = await broker.gql(
      analyst,
      `query($v: [String!]!) { clients_aggregate(purpose: PROGRAM_EVALUATION, groupBy: [],
          where: { ssn_hash: { in: $v } }) { groups { count suppressed } noise } }`,
      { v: asked },
      DATA,
    );
    expect(res.errors).toBeUndefined();
    return (res.data as { clients_aggregate: { groups: { count: number }[]; noise: number } })
      .clients_aggregate;
  };
  const scopes = () =>
    broker.query<{ field: string; useful: boolean; records: string; distinct_values: string; filed: string }>(
      `SELECT s.field, s.useful, s.records::text, s.distinct_values::text,
              (SELECT count(*) FROM hash_key k WHERE k.scope_id = s.id)::text AS filed
         FROM hash_key_scope s ORDER BY s.field`,
    );
  /** What the ssn table files, as `prefix rid`, and what it should: each record's HMAC, by Node. */
  const filed = async () =>
    (
      await broker.query<{ entry: string }>(
        `SELECT k.prefix::text || ' ' || k.rid::text AS entry FROM hash_key k
           JOIN hash_key_scope s ON s.id = k.scope_id WHERE s.field = 'ssn'`,
      )
    )
      .map((r) => r.entry)
      .sort();
  const truthFiled = async () =>
    (
      await broker.query<{ ssn: string | null; rid: string }>(
        `SELECT ssn, "_rid"::text AS rid FROM records.clients`,
      )
    )
      .filter((r) => r.ssn !== null)
      .map((r) => `${BigInt.asIntN(64, BigInt(`0x${hmac(r.ssn!).slice(0, 16)}`))} ${r.rid}`)
      .sort();
  const shapeAndField = async (field: 'ssn' | 'sex') => {
    const shape = (await broker.app.get(DatasetService).shapes([clients.id])).get(clients.id)!;
    const released = releasedField(
      shape.fields.find((f) => f.name === field)!,
      FieldTransform.HASH,
    );
    return { shape, released };
  };
  const build = async (field: 'ssn' | 'sex') => {
    const { shape, released } = await shapeAndField(field);
    return index.build({ agreementId, shape, released, hmacKey: key });
  };
  const waitFor = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 50));
  };
  const upload = (lines: string[]) =>
    broker.upload(steward, clients.id, 'text/csv', ['client_id,ssn,sex,released_on', ...lines].join('\n'));
  /** Ingests each (client_id, ssn) of `batch` as a record now, and remembers it so. */
  const ingest = async (batch: readonly (readonly [string, string])[]) => {
    await upload(batch.map(([id, ssn]) => `${id},${ssn},M,2099-06-07`));
    for (const [id, ssn] of batch) rows.set(id, { ssn, sex: 'M', released_on: '2099-06-07' });
  };
  /** Random batches of one to eight records of distinct keys, each given a value. */
  const batchesOf = (record: fc.Arbitrary<string>, value: fc.Arbitrary<string>) =>
    fc.uniqueArray(fc.tuple(record, value), { minLength: 1, maxLength: 8, selector: ([id]) => id });

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'hash_lookup' });
    index = broker.app.get(HashLookupIndex);
    const provider = await broker.createAgency('Community services');
    const recipient = await broker.createAgency('Research office');
    const providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    steward = providerSteward.apiKey;
    recipientStewardKey = recipientSteward.apiKey;
    analyst = (await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' })).apiKey;
    await broker.definePurposes('PROGRAM_EVALUATION');
    clients = await broker.registerDataset(steward, {
      slug: 'clients',
      title: 'Clients',
      keyField: 'client_id',
      retentionDays: 30,
      retentionField: 'released_on',
      fields: [
        { name: 'client_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'ssn', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'sex', type: 'STRING', classification: 'SENSITIVE' },
        { name: 'released_on', type: 'DATE', classification: 'NON_SENSITIVE' },
      ],
    });
    rows = new Map();
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      rows.set(clientId(i), { ssn: ssnOf(i), sex: sexOf(i), released_on: releasedOn(i) });
      lines.push(`${clientId(i)},${ssnOf(i)},${sexOf(i)},${releasedOn(i)}`);
    }
    await upload(lines);
    agreementId = await broker.activateAgreement(steward, recipientSteward.apiKey, {
      title: 'Clients for evaluation',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['PROGRAM_EVALUATION'],
      ...WINDOW,
      grants: [
        {
          datasetId: clients.id,
          fields: [
            { name: 'client_id' },
            { name: 'ssn', transform: 'HASH' },
            { name: 'sex', transform: 'HASH' },
          ],
        },
      ],
    });
    [{ key }] = await broker.query<{ key: Buffer }>(
      `SELECT hmac_key AS key FROM agreement_secret WHERE agreement_id = $1`,
      [agreementId],
    );
    pg = new Client({ connectionString: broker.config.DATABASE_URL });
    await pg.connect();
  });
  afterAll(async () => {
    await pg?.end();
    await broker?.close();
  });

  it('is built after the first filter on a name, and only for that name', async () => {
    expect(await scopes()).toEqual([]);
    const asked = [hmac(ssnOf(5)), hmac(ssnOf(700))];
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    expect(truth('ssn', asked)).toEqual([clientId(5), clientId(700), clientId(1005)]);
    await waitFor(async () => (await scopes()).length > 0);
    // 1,000 distinct values for 1,200 records: every record filed.
    expect(await scopes()).toEqual([
      { field: 'ssn', useful: true, records: '1200', distinct_values: '1000', filed: '1200' },
    ]);
    const { shape, released } = await shapeAndField('ssn');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source })).toBe(true);
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    expect(await filter('ssn_hash', asked, 'eq')).toEqual(truth('ssn', asked.slice(0, 1)));
    // Built once: building again writes nothing.
    expect(await build('ssn')).toBeNull();
  });

  it('finds the same records with the table, with it dropped since, and by Node (fast-check)', async () => {
    await build('ssn');
    const value = fc.oneof(
      fc.integer({ min: 0, max: 1100 }).map((i) => hmac(ssnOf(i))),
      // Not a record's, upper-cased, cut, lengthened, under another key, random hex, any text.
      fc.string().map((s) => hmac(s)),
      fc.integer({ min: 0, max: 999 }).map((i) => hmac(ssnOf(i)).toUpperCase()),
      fc.integer({ min: 0, max: 999 }).map((i) => hmac(ssnOf(i)).slice(0, 63)),
      fc.integer({ min: 0, max: 999 }).map((i) => `${hmac(ssnOf(i))}0`),
      fc
        .integer({ min: 0, max: 999 })
        .map((i) => createHmac('sha256', randomBytes(32)).update(ssnOf(i)).digest('hex')),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
      fc.string(),
    );
    const lists = fc.array(value, { minLength: 1, maxLength: 6 });
    await fc.assert(
      fc.asyncProperty(lists, async (hashes) => {
        expect(await filter('ssn_hash', hashes)).toEqual(truth('ssn', hashes));
      }),
      { numRuns: 40 },
    );
    // The table dropped behind this broker's back (as another broker's ingestion would): the
    // statement's own check finds it gone, and every record is hashed instead.
    await broker.query(`DELETE FROM hash_key_scope`);
    const { shape, released } = await shapeAndField('ssn');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source })).toBe(true);
    await fc.assert(
      fc.asyncProperty(lists, async (hashes) => {
        expect(await filter('ssn_hash', hashes)).toEqual(truth('ssn', hashes));
      }),
      { numRuns: 15 },
    );
  });

  it('exports the records a page finds, through the table and without it', async () => {
    await build('ssn');
    const asked = [hmac(ssnOf(7)), hmac(ssnOf(8)), hmac(ssnOf(999)), 'not a hash'];
    expect(await exported(asked)).toEqual(truth('ssn', asked));
    expect(truth('ssn', asked)).toHaveLength(5);
    await broker.query(`DELETE FROM hash_key_scope`);
    expect(await exported(asked)).toEqual(truth('ssn', asked));
  });

  it('counts in aggregates the records a page finds, through the table and without it', async () => {
    // Sixty values of 1,000 (the first 200 have two records each): a count well above the cell size.
    const asked = Array.from({ length: 60 }, (_, i) => hmac(ssnOf(i * 7)));
    // The table was dropped by the test before: the statement hashes every record.
    expect(await scopes()).toEqual([]);
    const unbuilt = await counted(asked);
    await build('ssn');
    const { shape, released } = await shapeAndField('ssn');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source })).toBe(true);
    const served = await counted(asked);
    expect(served).toEqual(unbuilt);
    const exact = truth('ssn', asked).length;
    expect(Math.abs(served.groups[0].count - exact)).toBeLessThanOrEqual(served.noise);
  });

  it('reads the table by index and never runs the hashing branch while it serves (EXPLAIN)', async () => {
    await build('ssn');
    const { shape, released } = await shapeAndField('ssn');
    const plan = async () => {
      const params = new SqlParams();
      const hmacKey = params.lazy(key, 'bytea');
      const values = params.add([hmac(ssnOf(42))], 'text[]');
      const condition = hashLookupSql({
        params,
        agreementId,
        shape,
        released,
        hmacKey,
        tableAlias: 't',
        values,
      });
      // 1,200 records fit in a few pages, which PostgreSQL would rather read whole: as on a large
      // table, scans are made dear, so that the plan shows what the indexes can serve.
      await pg.query('BEGIN');
      try {
        await pg.query('SET LOCAL enable_seqscan = off');
        const { rows } = await pg.query<{ 'QUERY PLAN': unknown }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) SELECT t.client_id FROM records.clients t WHERE ${condition}`,
          params.values,
        );
        return JSON.stringify(rows[0]['QUERY PLAN']);
      } finally {
        await pg.query('ROLLBACK');
      }
    };
    const served = JSON.parse(await plan()) as unknown;
    const nodes: { type: string; relation?: string; alias?: string; index?: string; loops: number }[] = [];
    const walk = (node: Record<string, unknown>) => {
      nodes.push({
        type: String(node['Node Type']),
        relation: node['Relation Name'] as string | undefined,
        alias: node.Alias as string | undefined,
        index: node['Index Name'] as string | undefined,
        loops: Number(node['Actual Loops']),
      });
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk((served as { Plan: Record<string, unknown> }[])[0].Plan);
    expect(nodes).toEqual(
      expect.arrayContaining([expect.objectContaining({ index: 'hash_key_prefix_idx', loops: 1 })]),
    );
    // The hashing branch's scan of the record table (alias hr) is there, and never executed.
    expect(nodes.filter((n) => n.alias === 'hr').map((n) => n.loops)).toEqual([0]);
  });

  it('keeps no table for a name whose values have many records each, and answers alike', async () => {
    expect((await build('sex'))?.useful).toBe(false);
    expect((await scopes()).find((s) => s.field === 'sex')).toEqual({
      field: 'sex',
      useful: false,
      records: String(rows.size),
      distinct_values: '2',
      filed: '0',
    });
    const { shape, released } = await shapeAndField('sex');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source })).toBe(false);
    expect(await filter('sex_hash', [hmac('F')])).toEqual(truth('sex', [hmac('F')]));
  });

  it('is kept up to date by ingestion, in its transaction', async () => {
    await build('ssn');
    const fresh = hmac('S-NEW');
    expect(await filter('ssn_hash', [fresh])).toEqual([]);
    // An update of a record's value and a new record: both filed under their new value, the old
    // value's entry taken out, all in the ingestion's transaction.
    await upload([`${clientId(3)},S-NEW,M,2099-06-07`, `C99999,S-NEW,F,2099-06-07`]);
    rows.set(clientId(3), { ssn: 'S-NEW', sex: 'M', released_on: '2099-06-07' });
    rows.set('C99999', { ssn: 'S-NEW', sex: 'F', released_on: '2099-06-07' });
    expect((await scopes()).map((scope) => [scope.field, scope.filed])).toEqual([['ssn', String(rows.size)]]);
    expect(await filed()).toEqual(await truthFiled());
    // Still served, by this broker and (nothing was dropped) by every other.
    const { shape, released } = await shapeAndField('ssn');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source })).toBe(true);
    expect(await filter('ssn_hash', [fresh])).toEqual(['C99999', clientId(3)].sort());
    expect(await filter('ssn_hash', [hmac(ssnOf(3))])).toEqual(truth('ssn', [hmac(ssnOf(3))]));
  });

  it('files what a fresh build would, after any batch of updates and new records (fast-check)', async () => {
    await build('ssn');
    // Values a record may take: a few shared ones (so updates move records between values and back),
    // any text, or none (the field is optional: no entry at all).
    const value = fc.oneof(
      fc.constantFrom('S-A', 'S-B', ssnOf(11), ssnOf(12)),
      fc.string({ minLength: 1, maxLength: 12 }).filter((v) => !/[,"\r\n]/.test(v) && v.trim() === v),
      fc.constant(''),
    );
    const record = fc.oneof(
      fc.integer({ min: RECORDS - 50, max: RECORDS - 1 }).map(clientId),
      fc.integer({ min: 0, max: 30 }).map((i) => `N${String(i).padStart(3, '0')}`),
    );
    const batches = batchesOf(record, value);
    await fc.assert(
      fc.asyncProperty(batches, async (batch) => {
        await ingest(batch);
        expect(await filed()).toEqual(await truthFiled());
        // Its records counted as it files and unfiles them.
        const ssn = (await scopes()).find((s) => s.field === 'ssn');
        expect(ssn?.records).toBe(ssn?.filed);
        const asked = [...new Set(batch.map(([, ssn]) => ssn).filter(Boolean))].map(hmac);
        expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
      }),
      { numRuns: 25 },
    );
    expect((await scopes()).find((s) => s.field === 'ssn')?.useful).toBe(true);
  });

  it('files what Node finds when a build and an ingestion race, whichever goes first', async () => {
    for (let round = 0; round < 6; round++) {
      await broker.query(`DELETE FROM hash_key_scope`);
      const batch = Array.from({ length: 5 }, (_, i) => [
        i % 2 ? clientId(RECORDS - 10 - i) : `R${round}${i}`,
        `S-RACE-${round}-${i % 3}`,
      ]);
      // Started together: the build's SHARE lock and the ingestion's SHARE ROW EXCLUSIVE one take
      // turns, in either order.
      const [built] = await Promise.all([
        round % 2 ? build('ssn') : new Promise((r) => setImmediate(r)).then(() => build('ssn')),
        upload(batch.map(([id, ssn]) => `${id},${ssn},M,2099-06-07`)),
      ]);
      for (const [id, ssn] of batch) rows.set(id, { ssn, sex: 'M', released_on: '2099-06-07' });
      expect(built?.useful).toBe(true);
      expect(await filed()).toEqual(await truthFiled());
      const asked = [0, 1, 2].map((k) => hmac(`S-RACE-${round}-${k}`));
      expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    }
  });

  it('is dropped by a batch above the limit, or when its key or field is gone', async () => {
    await build('ssn');
    const dataset = { id: clients.id, slug: 'clients', keyField: 'client_id', fields: [] };
    const shape = (await broker.app.get(DatasetService).shapes([clients.id])).get(clients.id)!;
    const inTransaction = async <T>(run: () => Promise<T>) => {
      await pg.query('BEGIN');
      try {
        await pg.query(`LOCK TABLE records.clients IN SHARE ROW EXCLUSIVE MODE`);
        const result = await run();
        const left = await pg.query(`SELECT count(*)::int AS n FROM hash_key_scope`);
        return { result, left: (left.rows[0] as { n: number }).n };
      } finally {
        await pg.query('ROLLBACK');
      }
    };
    const withFields = { ...dataset, fields: shape.fields };
    // Within the limit: kept.
    const within = await inTransaction(() => keepHashLookups(pg, withFields, 4, 4));
    expect([within.result.dropped, within.left]).toEqual([false, 1]);
    // Above it: dropped.
    const above = await inTransaction(() => keepHashLookups(pg, withFields, 5, 4));
    expect([above.result.dropped, above.left]).toEqual([true, 0]);
    // The field no longer in the dataset's shape: that table is dropped, and nothing else happens.
    const noField = await inTransaction(() => keepHashLookups(pg, dataset, 1));
    expect([noField.result.dropped, noField.left]).toEqual([false, 0]);
    // The agreement's key gone: dropped, never kept with entries it could not write.
    const noKey = await inTransaction(async () => {
      await pg.query(`DELETE FROM agreement_secret WHERE agreement_id = $1`, [agreementId]);
      return keepHashLookups(pg, withFields, 1);
    });
    expect([noKey.result.dropped, noKey.left]).toEqual([false, 0]);
    expect((await scopes()).map((s) => s.field)).toEqual(['ssn']);
  });

  it('waits for an ingestion under way before it builds', async () => {
    await broker.query(`DELETE FROM hash_key_scope`);
    // A build while a change holds the record table's lock (as ingestion does) waits for it, and
    // then files what it committed.
    await pg.query('BEGIN');
    await pg.query(`LOCK TABLE records.clients IN SHARE ROW EXCLUSIVE MODE`);
    await pg.query(
      `INSERT INTO records.clients (client_id, ssn, sex, released_on) VALUES ('C99998', 'S-LOCK', 'M', '2099-06-07')`,
    );
    let done = false;
    const building = build('ssn').then((b) => ((done = true), b));
    await new Promise((r) => setTimeout(r, 300));
    expect(done).toBe(false);
    await pg.query('COMMIT');
    rows.set('C99998', { ssn: 'S-LOCK', sex: 'M', released_on: '2099-06-07' });
    // Records with a value: an empty one (written by the property above) is none.
    expect((await building)?.records).toBe([...rows.values()].filter((r) => r.ssn !== '').length);
    const [{ filed }] = await broker.query<{ filed: string }>(
      `SELECT count(*)::text AS filed FROM hash_key k JOIN hash_key_scope s ON s.id = k.scope_id
        WHERE s.field = 'ssn' AND k.rid = (SELECT "_rid" FROM records.clients WHERE client_id = 'C99998')`,
    );
    expect(filed).toBe('1');
    expect(await filter('ssn_hash', [hmac('S-LOCK')])).toEqual(['C99998']);
  });

  it('is dropped, with every entry, when retention destroys a record it filed, and built again', async () => {
    await build('ssn');
    const ssnScope = async () =>
      (
        await broker.query<{ filed: string; records: string }>(
          `SELECT (SELECT count(*) FROM hash_key k WHERE k.scope_id = s.id)::text AS filed, s.records::text
             FROM hash_key_scope s WHERE s.field = 'ssn'`,
        )
      )[0];
    expect(await ssnScope()).toBeDefined();
    const old = [...rows].filter(([, r]) => r.released_on < '2002').map(([id]) => id);
    expect(old.length).toBeGreaterThan(100);
    const doomed = (
      await broker.query<{ rid: string }>(
        `SELECT "_rid"::text AS rid FROM records.clients WHERE client_id = ANY ($1::text[])`,
        [old],
      )
    ).map((r) => r.rid);
    const entriesOf = async (rids: string[]) =>
      Number(
        (
          await broker.query<{ n: string }>(
            `SELECT count(*)::text AS n FROM hash_key WHERE rid = ANY ($1::bigint[])`,
            [rids],
          )
        )[0].n,
      );
    expect(await entriesOf(doomed)).toBeGreaterThan(0);
    const retention = broker.app.get(RetentionService);
    const report = await retention.run();
    expect(report.datasets.find((d) => d.datasetId === clients.id)?.destroyed).toBe(old.length);
    for (const id of old) rows.delete(id);
    // No entry of a destroyed record is left: the table went with them.
    expect(await ssnScope()).toBeUndefined();
    expect(await entriesOf(doomed)).toBe(0);
    const asked = [hmac(ssnOf(5)), hmac(ssnOf(500))];
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    // C00005 was destroyed; C01005 shares its value and stays.
    expect(truth('ssn', asked)).toEqual([clientId(500), clientId(1005)]);
    // Built again (after the next filter, in the background): the records kept, and none destroyed.
    await build('ssn');
    const rebuilt = await ssnScope();
    expect(rebuilt.filed).toBe(rebuilt.records);
    expect(await entriesOf(doomed)).toBe(0);
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
  });

  it('is kept when the records retention destroys had no value in its field', async () => {
    await build('ssn');
    const ssnScope = async () =>
      (
        await broker.query<{ id: number; records: string }>(
          `SELECT id, records::text FROM hash_key_scope WHERE field = 'ssn'`,
        )
      )[0];
    const before = await ssnScope();
    const empty = 50;
    await upload(Array.from({ length: empty }, (_, i) => `N${String(i).padStart(5, '0')},,M,2001-02-03`));
    const retention = broker.app.get(RetentionService);
    let report = await retention.run();
    expect(report.datasets.find((d) => d.datasetId === clients.id)?.destroyed).toBe(empty);
    expect(await ssnScope()).toEqual(before);
    // One record with a value among those destroyed: the table goes.
    await upload(['G00000,S-GONE-1,M,2001-02-03']);
    report = await retention.run();
    expect(report.datasets.find((d) => d.datasetId === clients.id)?.destroyed).toBe(1);
    expect(await ssnScope()).toBeUndefined();
    const asked = [hmac(ssnOf(600)), hmac('S-GONE-1')];
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    expect(truth('ssn', asked)).toEqual([clientId(600)]);
  });

  it('is dropped when its agreement is no longer in force', async () => {
    await build('ssn');
    expect(await index.sweep()).toBe(0);
    await broker.query(`UPDATE agreement SET revoked_at = now() WHERE id = $1`, [agreementId]);
    try {
      // While an ingestion holds the table (as keepHashLookups does), the sweep passes it by at once.
      await pg.query('BEGIN');
      try {
        await pg.query(`SELECT id FROM hash_key_scope FOR KEY SHARE`);
        expect(await index.sweep()).toBe(0);
      } finally {
        await pg.query('ROLLBACK');
      }
      expect(await index.sweep()).toBe(1);
      expect(await scopes()).toEqual([]);
    } finally {
      await broker.query(`UPDATE agreement SET revoked_at = NULL WHERE id = $1`, [agreementId]);
    }
  });

  it("files an empty dataset's first records, copied straight into its table", async () => {
    await broker.query(`DELETE FROM hash_key_scope`);
    await broker.query(`DELETE FROM records.clients`);
    rows.clear();
    // Built on no records: a table that serves, with nothing filed.
    expect(await build('ssn')).toEqual({
      records: 0,
      distinctValues: 0,
      useful: true,
      commonValues: 0,
      unfiledValues: 0,
    });
    const lines = Array.from({ length: 40 }, (_, i) => `${clientId(i)},${ssnOf(i % 30)},F,2099-06-07`);
    await upload(lines);
    for (let i = 0; i < 40; i++)
      rows.set(clientId(i), { ssn: ssnOf(i % 30), sex: 'F', released_on: '2099-06-07' });
    expect(await filed()).toHaveLength(40);
    expect(await filed()).toEqual(await truthFiled());
    const asked = [hmac(ssnOf(3)), hmac(ssnOf(29))];
    expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked));
    expect(truth('ssn', asked)).toHaveLength(3);
  });

  it("lists a skewed field's common values, files those a large page reads, and hashes the others", async () => {
    await broker.query(`DELETE FROM hash_key_scope`);
    // Beside the earlier test's 40 records of 30 rare values: 150 records share one value (common
    // for a page of 10: more than 100) and 2,000 another (more than 0.4 of the records: not filed).
    const skewed = (prefix: string, n: number, ssn: string) =>
      Array.from({ length: n }, (_, i) => {
        const id = `${prefix}${String(i).padStart(5, '0')}`;
        rows.set(id, { ssn, sex: 'M', released_on: '2099-06-07' });
        return `${id},${ssn},M,2099-06-07`;
      });
    await upload([...skewed('K', 150, 'S-COMMON'), ...skewed('V', 2000, 'S-VERY')]);
    const built = await build('ssn');
    expect(built).toEqual({
      records: rows.size,
      distinctValues: new Set([...rows.values()].map((r) => r.ssn)).size,
      useful: true,
      commonValues: 2,
      unfiledValues: 1,
    });
    expect(hashLookupCommonAbove(rows.size)).toBeLessThan(150);
    expect(hashLookupCommonAbove(rows.size, 1000)).toBeGreaterThan(150);
    expect(hashLookupFiledUpTo(rows.size)).toBeLessThan(2000);
    expect(hashLookupFiledUpTo(rows.size)).toBeGreaterThan(150);
    const [common, very] = [hmac('S-COMMON'), hmac('S-VERY')];
    // The values it files with their records (hash_key_sized); those it does not, apart, where every
    // version of the broker looks for them (hash_key_common).
    const listed = await broker.query<{ prefix: string; records: string; filed: boolean }>(
      `SELECT prefix::text, records::text, true AS filed FROM hash_key_sized
       UNION ALL SELECT prefix::text, records::text, false FROM hash_key_common ORDER BY records`,
    );
    expect(listed).toEqual([
      { prefix: keyPrefixOf(common), records: '150', filed: true },
      { prefix: keyPrefixOf(very), records: '2000', filed: false },
    ]);
    // Every record is filed but those of the value too common to file, and the scope counts them.
    const unfiled = (entries: string[]) => entries.filter((e) => !e.startsWith(`${keyPrefixOf(very)} `));
    expect((await scopes()).map((s) => [s.field, s.records, s.filed])).toEqual([
      ['ssn', String(rows.size - 2000), String(rows.size - 2000)],
    ]);
    expect(await filed()).toEqual(unfiled(await truthFiled()));
    // This broker reads the table for the common value only for a page large enough, a count or an
    // export; never for the value it does not file.
    const { shape, released } = await shapeAndField('ssn');
    const ssn = { agreementId, datasetId: shape.id, field: released.source };
    const rare = hmac(ssnOf(3));
    expect(index.serves(ssn, [rare], 10)).toBe(true);
    expect(index.serves(ssn, [common], 10)).toBe(false);
    expect(index.serves(ssn, [rare, common], 10)).toBe(false);
    expect(index.serves(ssn, [common], 1000)).toBe(true);
    // Ordered by the row id, a page of 10 is as dear through the table as one of 100 otherwise.
    expect(index.serves(ssn, [common], 10, true)).toBe(true);
    expect(index.serves(ssn, [common], 10, false)).toBe(false);
    expect(index.serves(ssn, [common])).toBe(true);
    expect(index.serves(ssn, [very])).toBe(false);
    expect(index.serves(ssn, [common, very], 10_000)).toBe(false);
    for (const asked of [[common], [very], [rare], [common, hmac(ssnOf(7)), 'not a hash'], [very, rare]]) {
      // A page of 1,000 ordered by client_id: the first 1,000 of the truth.
      expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked).slice(0, 1000));
    }
    expect(truth('ssn', [common])).toHaveLength(150);
    expect(truth('ssn', [very])).toHaveLength(2000);
    // Which way each page went: with the entry of the common value's first record taken out of the
    // table, a page of 1,000 (read from the table) misses it, a page of 10 (hashed in order) has it.
    const firstOfCommon = truth('ssn', [common])[0];
    const { rows: taken } = await pg.query<{ rid: string }>(
      `DELETE FROM hash_key k USING records.clients c
        WHERE c.client_id = $1 AND k.rid = c."_rid" RETURNING k.rid::text`,
      [firstOfCommon],
    );
    expect(taken).toHaveLength(1);
    try {
      expect(await filter('ssn_hash', [common])).toEqual(truth('ssn', [common]).slice(1));
      expect(await filter('ssn_hash', [common], 'in', 10)).toEqual(truth('ssn', [common]).slice(0, 10));
      // An export and a count read every record of it: through the table too.
      expect(await exported([common])).toEqual(truth('ssn', [common]).slice(1));
      // Exact (the analyst reads the rows), so the record the table misses is not counted.
      expect(await counted([common])).toEqual({ groups: [{ count: 149, suppressed: false }], noise: 0 });
    } finally {
      await pg.query(
        `INSERT INTO hash_key (scope_id, prefix, rid) SELECT id, $1::bigint, $2::bigint FROM hash_key_scope`,
        [keyPrefixOf(common), taken[0].rid],
      );
    }
    // In the row id's order the table costs a page less (its row ids come in that order): a page of
    // 10 reads it for the common value. With the entry of the value's first record in that order
    // taken out, the page misses it, where hashing in order would have found it first.
    expect(index.serves(ssn, [common], 10, true)).toBe(true);
    const byRowId = (
      await pg.query<{ client_id: string; rid: string }>(
        `SELECT client_id, "_rid"::text AS rid FROM records.clients WHERE ssn = 'S-COMMON' ORDER BY "_rid"`,
      )
    ).rows;
    await pg.query(`DELETE FROM hash_key WHERE rid = $1::bigint`, [byRowId[0].rid]);
    try {
      expect(await filter('ssn_hash', [common], 'in', 10, false)).toEqual(
        byRowId
          .slice(1, 11)
          .map((r) => r.client_id)
          .sort(),
      );
    } finally {
      await pg.query(
        `INSERT INTO hash_key (scope_id, prefix, rid) SELECT id, $1::bigint, $2::bigint FROM hash_key_scope`,
        [keyPrefixOf(common), byRowId[0].rid],
      );
    }
    expect(await filter('ssn_hash', [common], 'in', 10, false)).toEqual(
      byRowId
        .slice(0, 10)
        .map((r) => r.client_id)
        .sort(),
    );
    // A statement that reads the table for the unfiled value all the same (a broker whose knowledge
    // is stale) finds the table does not serve it, and hashes every record instead.
    const params = new SqlParams();
    const condition = hashLookupSql({
      params,
      agreementId,
      shape,
      released,
      hmacKey: params.lazy(key, 'bytea'),
      tableAlias: 't',
      values: params.add([very], 'text[]'),
    });
    const found = await pg.query<{ client_id: string }>(
      `SELECT t.client_id FROM records.clients t WHERE ${condition}`,
      params.values,
    );
    expect(found.rows.map((r) => r.client_id).sort()).toEqual(truth('ssn', [very]));
    // Ingestion files new records of a rare value and of the common one, never of the unfiled one.
    await upload([
      `K99990,S-COMMON,F,2099-06-07`,
      `K99991,S-RARE-NEW,F,2099-06-07`,
      `K99992,S-VERY,F,2099-06-07`,
    ]);
    rows.set('K99990', { ssn: 'S-COMMON', sex: 'F', released_on: '2099-06-07' });
    rows.set('K99991', { ssn: 'S-RARE-NEW', sex: 'F', released_on: '2099-06-07' });
    rows.set('K99992', { ssn: 'S-VERY', sex: 'F', released_on: '2099-06-07' });
    expect(await filed()).toEqual(unfiled(await truthFiled()));
    for (const asked of [[common], [very], [hmac('S-RARE-NEW')]]) {
      expect(await filter('ssn_hash', asked)).toEqual(truth('ssn', asked).slice(0, 1000));
    }
  });

  it('stays complete when a broker of the version before filing common values ingests beside newer ones', async () => {
    // That version's upkeep (before migration hash-key-common-filed), as it was written: it files a
    // batch's records except under every prefix hash_key_common lists. Run here on the table the
    // test before built, for new records of the common value (filed) and of the unfiled one.
    const { shape, released } = await shapeAndField('ssn');
    const hashed = releasedExpression(released, shape, 't', '$1::bytea');
    const [{ id: scopeId }] = await broker.query<{ id: number }>(`SELECT id FROM hash_key_scope`);
    const added = ['K88880', 'K88881', 'V88880'];
    await pg.query('BEGIN');
    try {
      await pg.query(
        `INSERT INTO records.clients (client_id, ssn, sex, released_on)
         VALUES ('K88880', 'S-COMMON', 'M', '2099-06-07'), ('K88881', 'S-COMMON', 'M', '2099-06-07'),
                ('V88880', 'S-VERY', 'M', '2099-06-07')`,
      );
      await pg.query(
        `WITH filed AS (
           INSERT INTO hash_key (scope_id, prefix, rid)
           SELECT $2, n.prefix, n.rid FROM (
             SELECT ${keyPrefixSql(hashed)} AS prefix, t."_rid" AS rid FROM records.clients t
              WHERE t.client_id = ANY ($3) AND t.ssn IS NOT NULL OFFSET 0) n
            WHERE NOT EXISTS (SELECT 1 FROM hash_key hk WHERE hk.scope_id = $2 AND hk.prefix = n.prefix AND hk.rid = n.rid)
              AND NOT EXISTS (SELECT 1 FROM hash_key_common hc WHERE hc.scope_id = $2 AND hc.prefix = n.prefix)
           RETURNING 1)
         UPDATE hash_key_scope SET records = records + (SELECT count(*) FROM filed) WHERE id = $2`,
        [key, scopeId, added],
      );
      await pg.query('COMMIT');
    } catch (error) {
      await pg.query('ROLLBACK');
      throw error;
    }
    rows.set('K88880', { ssn: 'S-COMMON', sex: 'M', released_on: '2099-06-07' });
    rows.set('K88881', { ssn: 'S-COMMON', sex: 'M', released_on: '2099-06-07' });
    rows.set('V88880', { ssn: 'S-VERY', sex: 'M', released_on: '2099-06-07' });
    // The common value's new records are filed, the unfiled value's are not, as this version files them.
    const very = hmac('S-VERY');
    expect(await filed()).toEqual((await truthFiled()).filter((e) => !e.startsWith(`${keyPrefixOf(very)} `)));
    const common = hmac('S-COMMON');
    expect(await filter('ssn_hash', [common])).toEqual(truth('ssn', [common]));
    expect(await exported([common])).toEqual(truth('ssn', [common]));
  });

  it('answers a broker of the release before common values in full, and serves the tables it builds', async () => {
    // That release reads a table whenever its scope's `useful` is true, as one that files every value,
    // and knows nothing of hash_key_common. The table the tests before built leaves S-VERY out: it
    // says so to that release, and serves this one through `serves`.
    const { shape, released } = await shapeAndField('ssn');
    const ssn = { agreementId, datasetId: shape.id, field: released.source };
    expect(await broker.query(`SELECT useful, serves FROM hash_key_scope WHERE field = 'ssn'`)).toEqual([
      { useful: false, serves: true },
    ]);
    const [common, very] = [hmac('S-COMMON'), hmac('S-VERY')];
    // That release's lookup, as it shipped (its hashLookupSql), for each value.
    const previousRelease = async (asked: string[]) => {
      const params = new SqlParams();
      const hmacKey = params.lazy(key, 'bytea');
      const values = params.add(asked, 'text[]');
      const scope = `SELECT hs.id FROM hash_key_scope hs
         WHERE hs.agreement_id = ${params.add(agreementId, 'uuid')} AND hs.dataset_id = ${params.add(shape.id, 'uuid')}
           AND hs.field = ${params.add(released.source, 'text')} AND hs.useful`;
      const lookup = `(t."_rid" = ANY (ARRAY(
          SELECT hk.rid FROM hash_key hk WHERE hk.scope_id = (${scope}) AND hk.prefix = ANY (${keyPrefixesSql(values)})
          UNION ALL
          SELECT h._rid FROM (SELECT hr."_rid" FROM records.clients hr
                               WHERE ${releasedExpression(released, shape, 'hr', hmacKey)} = ANY (${values}) OFFSET 0) h
           WHERE NOT EXISTS (${scope}))))`;
      const found = await pg.query<{ client_id: string }>(
        `SELECT t.client_id FROM records.clients t
          WHERE ${releasedExpression(released, shape, 't', hmacKey)} = ANY (${values}) AND ${lookup}`,
        params.values,
      );
      return found.rows.map((r) => r.client_id).sort();
    };
    for (const asked of [[very], [common], [hmac(ssnOf(3))], [very, common]]) {
      expect(await previousRelease(asked)).toEqual(truth('ssn', asked));
    }
    expect(truth('ssn', [very]).length).toBeGreaterThan(2000);
    // A table that release builds (its scope row has no `serves`; it files every record) serves this one.
    await broker.query(`DELETE FROM hash_key_scope`);
    const [{ id }] = await broker.query<{ id: number }>(
      `INSERT INTO hash_key_scope (agreement_id, dataset_id, field, records, distinct_values, useful)
       SELECT $1, $2, 'ssn', count(ssn), count(DISTINCT ssn), true FROM records.clients RETURNING id`,
      [agreementId, shape.id],
    );
    await pg.query(
      `INSERT INTO hash_key (scope_id, prefix, rid)
       SELECT $2, ${keyPrefixSql(releasedExpression(released, shape, 't', '$1::bytea'))}, t."_rid"
         FROM records.clients t WHERE t.ssn IS NOT NULL`,
      [key, id],
    );
    expect(await build('ssn')).toBeNull();
    expect(index.serves(ssn, [very], 10)).toBe(true);
    expect(await filter('ssn_hash', [very])).toEqual(truth('ssn', [very]).slice(0, 1000));
    // Read through that table: with one record's entry taken out, the page misses it.
    const firstOfVery = truth('ssn', [very])[0];
    await pg.query(
      `DELETE FROM hash_key k USING records.clients c WHERE c.client_id = $1 AND k.rid = c."_rid"`,
      [firstOfVery],
    );
    expect(await filter('ssn_hash', [very])).toEqual(truth('ssn', [very]).slice(1, 1001));
    expect(await previousRelease([very])).toEqual(truth('ssn', [very]).slice(1));
    // This release's own table again, for the tests after.
    await broker.query(`DELETE FROM hash_key_scope`);
    expect((await build('ssn'))?.unfiledValues).toBe(1);
  });

  it('keeps an entry that another record of the same random row id still needs', async () => {
    // Row ids are random, not unique: two records of one row id and one value share an entry.
    const {
      rows: [{ rid }],
    } = await pg.query<{ rid: string }>(
      `SELECT "_rid"::text AS rid FROM records.clients WHERE client_id = $1`,
      [clientId(5)],
    );
    await upload([`${clientId(5)},S-TWIN,F,2099-06-07`, `T00001,S-TWIN,F,2099-06-07`]);
    // T00001 drew clientId(5)'s row id, as a build would then have filed it: its entry moves along.
    const {
      rows: [{ old }],
    } = await pg.query<{ old: string }>(
      `UPDATE records.clients n SET "_rid" = $1::bigint FROM records.clients o
        WHERE n.client_id = 'T00001' AND o.client_id = n.client_id RETURNING o."_rid"::text AS old`,
      [rid],
    );
    await pg.query(`UPDATE hash_key SET rid = $1::bigint WHERE rid = $2::bigint`, [rid, old]);
    rows.set(clientId(5), { ssn: 'S-TWIN', sex: 'F', released_on: '2099-06-07' });
    rows.set('T00001', { ssn: 'S-TWIN', sex: 'F', released_on: '2099-06-07' });
    const twin = hmac('S-TWIN');
    expect(await filter('ssn_hash', [twin])).toEqual([clientId(5), 'T00001'].sort());
    // One of them changes value: the other keeps the entry, and is still found through the table.
    await upload([`${clientId(5)},S-OTHER,F,2099-06-07`]);
    rows.set(clientId(5), { ssn: 'S-OTHER', sex: 'F', released_on: '2099-06-07' });
    const { shape, released } = await shapeAndField('ssn');
    expect(index.serves({ agreementId, datasetId: shape.id, field: released.source }, [twin], 10)).toBe(true);
    expect(await filter('ssn_hash', [twin])).toEqual(['T00001']);
    expect(await filter('ssn_hash', [hmac('S-OTHER')])).toEqual([clientId(5)]);
    // The row id moved behind the broker's back above: the table is built afresh for the next test.
    await broker.query(`DELETE FROM hash_key_scope`);
    expect((await build('ssn'))?.unfiledValues).toBe(1);
    expect(await filed()).toEqual(
      (await truthFiled()).filter((e) => !e.startsWith(`${keyPrefixOf(hmac('S-VERY'))} `)),
    );
  });

  it("keeps a skewed field's table true across any batch that moves records between its values (fast-check)", async () => {
    // The table of the test before: S-COMMON filed as common, S-VERY listed and not filed.
    const [common, very] = [hmac('S-COMMON'), hmac('S-VERY')];
    const unfiled = (entries: string[]) => entries.filter((e) => !e.startsWith(`${keyPrefixOf(very)} `));
    expect(await filed()).toEqual(unfiled(await truthFiled()));
    const value = fc.constantFrom('S-COMMON', 'S-VERY', 'S-RARE-NEW', ssnOf(21), '');
    // Records of every kind: of the common value, of the unfiled one, rare ones, and new ones.
    const record = fc.oneof(
      fc.integer({ min: 0, max: 149 }).map((i) => `K${String(i).padStart(5, '0')}`),
      fc.integer({ min: 0, max: 1999 }).map((i) => `V${String(i).padStart(5, '0')}`),
      fc.integer({ min: 0, max: 39 }).map(clientId),
      fc.integer({ min: 0, max: 20 }).map((i) => `M${String(i).padStart(3, '0')}`),
    );
    const batches = batchesOf(record, value);
    await fc.assert(
      fc.asyncProperty(batches, fc.constantFrom(10, 1000), async (batch, first) => {
        await ingest(batch);
        expect(await filed()).toEqual(unfiled(await truthFiled()));
        const ssn = (await scopes()).find((s) => s.field === 'ssn');
        expect(ssn?.records).toBe(ssn?.filed);
        for (const asked of [[common], [very], [common, hmac('S-RARE-NEW'), hmac(ssnOf(21))]]) {
          expect(await filter('ssn_hash', asked, 'in', first)).toEqual(truth('ssn', asked).slice(0, first));
        }
      }),
      { numRuns: 20 },
    );
  });

  it('calls a value common past twice the square root of the records, and never below 100', () => {
    const records = [0, 1_200, 10_000, 1_000_000, 10_000_000];
    expect(records.map((n) => hashLookupCommonAbove(n))).toEqual([100, 100, 200, 2_000, 6_325]);
    // For a page of 1,000 rows ten times as many: 2·√(records·first/10).
    expect(records.map((n) => hashLookupCommonAbove(n, 1000))).toEqual([100, 693, 2_000, 20_000, 63_246]);
    // Filed up to the common value of the largest page (10,000 rows), or 0.4 of the records.
    expect(records.map(hashLookupFiledUpTo)).toEqual([100, 480, 4_000, 63_246, 200_000]);
    // Read through the table: a page of 10 in the row id's order as one of 100 otherwise; a count always.
    expect(hashLookupServesUpTo(1_000_000, 10, false)).toBe(2_000);
    expect(hashLookupServesUpTo(1_000_000, 10, true)).toBe(6_325);
    expect(hashLookupServesUpTo(1_000_000, 1000, true)).toBe(63_246);
    expect(hashLookupServesUpTo(1_000_000, Number.POSITIVE_INFINITY, false)).toBe(Number.POSITIVE_INFINITY);
  });

  it("computes a value's prefix in Node as PostgreSQL does (fast-check)", async () => {
    const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
    const value = fc.oneof(
      hex,
      hex.map((h) => h.toUpperCase()),
      hex.map((h) => h.slice(1)),
      fc.string(),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 5 }), async (values) => {
        const [{ prefixes }] = await broker.query<{ prefixes: string[] }>(
          `SELECT ${keyPrefixesSql('$1::text[]')}::text[] AS prefixes`,
          [values],
        );
        expect(prefixes).toEqual(values.map(keyPrefixOf).filter((p) => p !== null));
      }),
      { numRuns: 60 },
    );
  });

  it('holds the agreement key in no catalog object', async () => {
    await build('ssn');
    const hex = key.toString('hex');
    const [found] = await broker.query<{ n: number }>(
      `SELECT ((SELECT count(*) FROM pg_indexes WHERE indexdef ILIKE '%' || $1 || '%')
             + (SELECT count(*) FROM pg_views WHERE definition ILIKE '%' || $1 || '%')
             + (SELECT count(*) FROM pg_matviews WHERE definition ILIKE '%' || $1 || '%')
             + (SELECT count(*) FROM pg_proc WHERE prosrc ILIKE '%' || $1 || '%')
             + (SELECT count(*) FROM pg_constraint WHERE pg_get_constraintdef(oid) ILIKE '%' || $1 || '%'))::int AS n`,
      [hex],
    );
    expect(found.n).toBe(0);
  });

  it('answers every ssn the dataset holds as its records say, whatever the tests before left', async () => {
    // The truth read from the record table itself (earlier tests also write it directly), not from
    // a model kept beside it.
    const { rows: truthRows } = await pg.query<{ ssn: string; ids: string[] }>(
      `SELECT ssn, array_agg(client_id ORDER BY client_id) AS ids FROM records.clients
        WHERE ssn IS NOT NULL GROUP BY ssn`,
    );
    expect(truthRows.length).toBeGreaterThan(10);
    const wrong: string[] = [];
    for (const { ssn, ids } of truthRows) {
      const got = await filter('ssn_hash', [hmac(ssn)], 'in', 1000, false);
      // A value of more than a page's records: a full page, all of them its own.
      const right =
        ids.length <= 1000
          ? JSON.stringify(got) === JSON.stringify([...ids].sort())
          : got.length === 1000 && got.every((id) => ids.includes(id));
      if (!right) wrong.push(`${ssn}: ${got.length} of ${ids.length}`);
    }
    expect(wrong).toEqual([]);
  });

  it('drops the tables no grant in force reads: a grant removed, a field no longer HASH or dropped, a row filter changed', async () => {
    // The records as the suite began, whatever the tests before left.
    await broker.query(`DELETE FROM hash_key_scope`);
    await broker.query(`DELETE FROM records.clients`);
    rows.clear();
    const lines: string[] = [];
    for (let i = 0; i < RECORDS; i++) {
      rows.set(clientId(i), { ssn: ssnOf(i), sex: sexOf(i), released_on: releasedOn(i) });
      lines.push(`${clientId(i)},${ssnOf(i)},${sexOf(i)},${releasedOn(i)}`);
    }
    await upload(lines);
    const visits = await broker.registerDataset(steward, {
      slug: 'visits',
      title: 'Visits',
      keyField: 'visit_id',
      fields: [
        { name: 'visit_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'ssn', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
      ],
    });
    await broker.upload(
      steward,
      visits.id,
      'text/csv',
      ['visit_id,ssn', ...Array.from({ length: 40 }, (_, i) => `V${i},${ssnOf(i)}`)].join('\n'),
    );
    const [{ providerAgencyId, recipientAgencyId }] = await broker.query<{
      providerAgencyId: string;
      recipientAgencyId: string;
    }>(
      `SELECT provider_agency_id AS "providerAgencyId", recipient_agency_id AS "recipientAgencyId"
         FROM agreement WHERE id = $1`,
      [agreementId],
    );
    /** The agreement's terms: the clients grant (sex released as given, a row filter), visits if any. */
    const terms = (
      sex: 'HASH' | 'RAW' | null,
      rowFilter: Record<string, unknown> | null,
      withVisits: boolean,
    ) => ({
      title: 'Clients for evaluation',
      providerAgencyId,
      recipientAgencyId,
      purposes: ['PROGRAM_EVALUATION'],
      ...WINDOW,
      grants: [
        {
          datasetId: clients.id,
          fields: [
            { name: 'client_id' },
            { name: 'ssn', transform: 'HASH' },
            ...(sex ? [{ name: 'sex', transform: sex }] : []),
          ],
          rowFilter,
        },
        ...(withVisits
          ? [{ datasetId: visits.id, fields: [{ name: 'visit_id' }, { name: 'ssn', transform: 'HASH' }] }]
          : []),
      ],
    });
    let population: Record<string, unknown> | null = null;
    const amendTo = async (input: ReturnType<typeof terms>) => {
      const [{ version }] = await broker.query<{ version: number }>(
        `SELECT max(version)::int + 1 AS version FROM agreement_version WHERE agreement_id = $1`,
        [agreementId],
      );
      await broker.gqlOk(
        steward,
        `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { id } }`,
        { id: agreementId, input: withOversightText(input) },
      );
      const { approveAgreement } = await broker.gqlOk<{
        approveAgreement: { inForceVersion: number | null };
      }>(
        recipientStewardKey,
        `mutation($id: ID!, $v: Int!) { approveAgreement(id: $id, version: $v) { inForceVersion } }`,
        { id: agreementId, v: version },
      );
      if (approveAgreement.inForceVersion !== version) await broker.oversightApprove(agreementId, version);
      population = input.grants[0].rowFilter ?? null;
    };
    /** The tables: dataset, field, population (whether of a row filter), entries. */
    const tables = () =>
      broker.query<{ id: number; dataset: string; field: string; filtered: boolean; entries: number }>(
        `SELECT s.id, d.slug AS dataset, s.field, s.population <> '' AS filtered,
                (SELECT count(*) FROM hash_key k WHERE k.scope_id = s.id)::int AS entries
           FROM hash_key_scope s JOIN dataset d ON d.id = s.dataset_id ORDER BY d.slug, s.field`,
      );
    const named = async () =>
      (await tables()).map(({ dataset, field, filtered }) => ({ dataset, field, filtered }));
    /** No scope row nor entry is left of the tables `ids`. */
    const expectGone = async (ids: number[]) => {
      expect(ids.length).toBeGreaterThan(0);
      const [left] = await broker.query<{ scopes: number; entries: number }>(
        `SELECT (SELECT count(*) FROM hash_key_scope WHERE id = ANY ($1))::int AS scopes,
                (SELECT count(*) FROM hash_key WHERE scope_id = ANY ($1))::int AS entries`,
        [ids],
      );
      expect(left).toEqual({ scopes: 0, entries: 0 });
    };
    const idsOf = async (dataset: string, field: string) =>
      (await tables()).filter((t) => t.dataset === dataset && t.field === field).map((t) => t.id);
    const visitsTable = async () => {
      const shape = (await broker.app.get(DatasetService).shapes([visits.id])).get(visits.id)!;
      const released = releasedField(
        shape.fields.find((f) => f.name === 'ssn')!,
        FieldTransform.HASH,
      );
      return index.build({ agreementId, shape, released, hmacKey: key });
    };
    const clientsTable = async (field: 'ssn' | 'sex') => {
      const { shape, released } = await shapeAndField(field);
      return index.build({ agreementId, shape, released, hmacKey: key, rowFilter: population as never });
    };
    // Values of one or two records each (of either sex), and one no record has.
    const asked = [ssnOf(1), ssnOf(5), ssnOf(700), 'S-NONE'].map(hmac);
    /** The filter's answer is exact: the records of the asked values the row filter in force admits. */
    const expectAnswers = async () => {
      const admitted = truth('ssn', asked).filter(
        (id) => !population || rows.get(id)!.sex === population.sex,
      );
      expect(admitted.length).toBeGreaterThan(0);
      expect(await filter('ssn_hash', asked)).toEqual(admitted);
      expect(await filter('ssn_hash', asked, 'in', 1000, false)).toEqual(admitted);
    };

    // Both grants, sex as a HASH name: every table is read, none goes.
    await amendTo(terms('HASH', null, true));
    await clientsTable('ssn');
    await clientsTable('sex');
    await visitsTable();
    await expectAnswers();
    expect(await index.sweep()).toBe(0);
    expect(await named()).toEqual([
      { dataset: 'clients', field: 'sex', filtered: false },
      { dataset: 'clients', field: 'ssn', filtered: false },
      { dataset: 'visits', field: 'ssn', filtered: false },
    ]);
    expect((await tables()).find((t) => t.dataset === 'visits')?.entries).toBe(40);

    // (b) sex released RAW: its table goes, the others stay.
    let stale = await idsOf('clients', 'sex');
    await amendTo(terms('RAW', null, true));
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    expect(await named()).toEqual([
      { dataset: 'clients', field: 'ssn', filtered: false },
      { dataset: 'visits', field: 'ssn', filtered: false },
    ]);
    await expectAnswers();

    // (b) sex a HASH name again (its table built), then no longer released: its table goes.
    await amendTo(terms('HASH', null, true));
    await clientsTable('sex');
    expect(await index.sweep()).toBe(0);
    stale = await idsOf('clients', 'sex');
    await amendTo(terms(null, null, true));
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    await expectAnswers();

    // (c) A row filter: the clients table of every record goes, the visits table stays; the table
    // of the new population is built and kept.
    stale = await idsOf('clients', 'ssn');
    await amendTo(terms(null, { sex: 'F' }, true));
    await expectAnswers();
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    expect(await named()).toEqual([{ dataset: 'visits', field: 'ssn', filtered: false }]);
    await expectAnswers();
    await clientsTable('ssn');
    expect(await index.sweep()).toBe(0);
    expect(await named()).toEqual([
      { dataset: 'clients', field: 'ssn', filtered: true },
      { dataset: 'visits', field: 'ssn', filtered: false },
    ]);
    await expectAnswers();

    // (a) The visits grant removed: its table goes, but not when the grant comes back between the
    // sweep's read of the versions in force and its delete (the version judged is no longer in force).
    stale = await idsOf('visits', 'ssn');
    await amendTo(terms(null, { sex: 'F' }, false));
    const db = broker.app.get(Database);
    const original = db.query.bind(db);
    let amended = false;
    const spy = jest.spyOn(db, 'query').mockImplementation(async (sql: string, params?: unknown[]) => {
      const answer = await original(sql, params);
      if (!amended && sql.includes(`v.content->'grants'`)) {
        amended = true;
        await amendTo(terms(null, { sex: 'F' }, true));
      }
      return answer;
    });
    try {
      expect(await index.sweep()).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(amended).toBe(true);
    expect(await idsOf('visits', 'ssn')).toEqual(stale);
    await amendTo(terms(null, { sex: 'F' }, false));
    expect(await index.sweep()).toBe(1);
    await expectGone(stale);
    expect(await named()).toEqual([{ dataset: 'clients', field: 'ssn', filtered: true }]);
    await expectAnswers();
    expect(await index.sweep()).toBe(0);

    // The terms as they were, for the tests after this one.
    await amendTo(terms('HASH', null, false));
  });
});

/**
 * A record that moves to another subject takes a new row id (its former subject's releases stay
 * under the old one, in `destroyed_record`): every lookup table of its dataset then files it under
 * the new row id only, whether or not its hashed values changed, so that no entry names a row id no
 * record has.
 */
describe('HASH lookup tables across a move to another subject', () => {
  let broker: TestBroker;
  let index: HashLookupIndex;
  let key: Buffer;
  let analyst: string;
  let steward: string;
  let cases: { id: string };
  let agreementId: string;
  const FIELDS = ['ssn', 'town', 'person_id'] as const;
  const hmac = (value: string) => createHmac('sha256', key).update(value, 'utf8').digest('hex');
  const prefixOf = (value: string) => BigInt.asIntN(64, BigInt(`0x${hmac(value).slice(0, 16)}`)).toString();
  const upload = (lines: string[]) =>
    broker.upload(steward, cases.id, 'text/csv', ['case_id,person_id,ssn,town', ...lines].join('\n'));
  const line = (i: number, person = `P${i}`, ssn = `SSN${i}`) => `K${i},${person},${ssn},TOWN${i % 3}`;
  /** Each table's entries as `field prefix rid`, and what they should be: every live record's. */
  const entries = async () =>
    (
      await broker.query<{ entry: string }>(
        `SELECT s.field || ' ' || k.prefix::text || ' ' || k.rid::text AS entry
           FROM hash_key k JOIN hash_key_scope s ON s.id = k.scope_id WHERE s.dataset_id = $1`,
        [cases.id],
      )
    )
      .map((r) => r.entry)
      .sort();
  const truth = async () =>
    (
      await broker.query<Record<(typeof FIELDS)[number], string> & { rid: string }>(
        `SELECT ssn, town, person_id, "_rid"::text AS rid FROM records.cases`,
      )
    )
      .flatMap((r) => FIELDS.map((f) => `${f} ${prefixOf(r[f])} ${r.rid}`))
      .sort();
  const filter = async (value: string) => {
    const res = await broker.gql(
      analyst,
      `query($v: String!) { cases(purpose: CASE_REVIEW, first: 100, where: { ssn_hash: { eq: $v } }) {
          nodes { case_id } } }`,
      { v: hmac(value) },
      DATA,
    );
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return (res.data as { cases: { nodes: { case_id: string }[] } }).cases.nodes.map((n) => n.case_id);
  };
  const ridOf = async (caseId: string) =>
    (
      await broker.query<{ rid: string }>(
        `SELECT "_rid"::text AS rid FROM records.cases WHERE case_id = $1`,
        [caseId],
      )
    )[0].rid;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'hash_lookup_move' });
    index = broker.app.get(HashLookupIndex);
    const provider = await broker.createAgency('Courts');
    const recipient = await broker.createAgency('Research office');
    steward = (await broker.createUser({ agencyId: provider.id, role: 'STEWARD' })).apiKey;
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    analyst = (await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' })).apiKey;
    await broker.definePurposes('CASE_REVIEW');
    cases = await broker.registerDataset(steward, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'case_id',
      subjectField: 'person_id',
      fields: [
        { name: 'case_id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'person_id', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'ssn', type: 'STRING', classification: 'DIRECT_IDENTIFIER' },
        { name: 'town', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await upload(Array.from({ length: 30 }, (_, i) => line(i)));
    agreementId = await broker.activateAgreement(steward, recipientSteward.apiKey, {
      title: 'Cases for review',
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes: ['CASE_REVIEW'],
      ...WINDOW,
      grants: [
        {
          datasetId: cases.id,
          fields: [{ name: 'case_id' }, ...FIELDS.map((name) => ({ name, transform: 'HASH' }))],
        },
      ],
    });
    [{ key }] = await broker.query<{ key: Buffer }>(
      `SELECT hmac_key AS key FROM agreement_secret WHERE agreement_id = $1`,
      [agreementId],
    );
    const shape = (await broker.app.get(DatasetService).shapes([cases.id])).get(cases.id)!;
    for (const name of FIELDS) {
      const released = releasedField(
        shape.fields.find((f) => f.name === name)!,
        FieldTransform.HASH,
      );
      expect((await index.build({ agreementId, shape, released, hmacKey: key }))?.useful).toBe(true);
    }
  });
  afterAll(async () => {
    await broker?.close();
  });

  it("takes a moved record's old row id out of every table, in the ingestion's transaction", async () => {
    expect(await entries()).toEqual(await truth());
    const before = { k3: await ridOf('K3'), k4: await ridOf('K4'), k5: await ridOf('K5') };
    // K3 moves with its values unchanged, K4 moves with a new ssn, K5 changes its ssn only.
    await upload([line(3, 'P-NEW'), line(4, 'P-NEW', 'SSN-NEW'), line(5, 'P5', 'SSN-FIVE')]);
    const after = { k3: await ridOf('K3'), k4: await ridOf('K4'), k5: await ridOf('K5') };
    expect(after.k3).not.toBe(before.k3);
    expect(after.k4).not.toBe(before.k4);
    expect(after.k5).toBe(before.k5);
    const moved = await broker.query<{ rid: string }>(
      `SELECT rid::text FROM destroyed_record WHERE dataset_id = $1 ORDER BY rid`,
      [cases.id],
    );
    expect(moved.map((r) => r.rid).sort()).toEqual([before.k3, before.k4].sort());

    // Every table's row ids are live records' row ids, each table files exactly what a build would,
    // and counts what it files.
    const [{ dead }] = await broker.query<{ dead: number }>(
      `SELECT count(*)::int AS dead FROM hash_key k JOIN hash_key_scope s ON s.id = k.scope_id
        WHERE s.dataset_id = $1 AND NOT EXISTS (SELECT 1 FROM records.cases r WHERE r."_rid" = k.rid)`,
      [cases.id],
    );
    expect(dead).toBe(0);
    expect(await entries()).toEqual(await truth());
    const counts = await broker.query<{ field: string; records: string; filed: string }>(
      `SELECT s.field, s.records::text, (SELECT count(*) FROM hash_key k WHERE k.scope_id = s.id)::text AS filed
         FROM hash_key_scope s WHERE s.dataset_id = $1 ORDER BY s.field`,
      [cases.id],
    );
    expect(counts.map((c) => [c.field, c.records, c.filed])).toEqual(
      ['person_id', 'ssn', 'town'].map((f) => [f, '30', '30']),
    );
    // The moved records are found through the table, once each.
    const shape = (await broker.app.get(DatasetService).shapes([cases.id])).get(cases.id)!;
    const ssn = releasedField(
      shape.fields.find((f) => f.name === 'ssn')!,
      FieldTransform.HASH,
    );
    expect(index.serves({ agreementId, datasetId: cases.id, field: ssn.source })).toBe(true);
    expect(await filter('SSN3')).toEqual(['K3']);
    expect(await filter('SSN-NEW')).toEqual(['K4']);
    expect(await filter('SSN4')).toEqual([]);
    expect(await filter('SSN-FIVE')).toEqual(['K5']);
  });
});
