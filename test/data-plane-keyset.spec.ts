import { Database, statementName } from '@broker/core';
import { MAX_FIRST, PolicyError } from '@broker/policy';
import { DataPlaneService, PolicyCache, pageSql, planIsStable } from '@broker/data-plane';
import { TestBroker } from '@broker/testing';

const N = 3000;
const WORDS = ['b', 'B', 'a', 'é', 'z', 'Z', 'ab', '', 'a b'];
const day = (i: number) =>
  new Date(Date.UTC(2020, 0, 1) + ((i * 7) % 1000) * 86_400_000).toISOString().slice(0, 10);
const ROWS = Array.from({ length: N }, (_, i) => ({
  id: `K${String(i).padStart(5, '0')}`,
  d: day(i),
  s: i % 11 === 0 ? null : WORDS[(i * 5) % WORDS.length],
  n: i % 13 === 0 ? null : (i * 31) % 50,
  secret: `secret-${i % 17}`,
}));

type Node = { id: string; d: string; s: string | null; n: number | null; secret_hash: string | null };
type Order = { field: string; direction?: 'ASC' | 'DESC' }[];

describe('data plane: keyset cursors and index-friendly pages', () => {
  let broker: TestBroker;
  let analyst: { apiKey: string };
  let agencyId: string;
  let a: string; // RESEARCH, with a row filter
  let c: string; // RESEARCH, no row filter
  let b: string; // OTHER

  const data = (query: string, variables?: Record<string, unknown>) =>
    broker.gql(analyst.apiKey, query, variables, '/data/graphql');

  const PAGE = `query($agreement: ID, $where: ThingsWhere, $orderBy: [ThingsOrderBy!], $first: Int, $after: String) {
    things(purpose: RESEARCH, agreement: $agreement, where: $where, orderBy: $orderBy, first: $first, after: $after) {
      nodes { id d s n secret_hash } pageInfo { hasNextPage endCursor } } }`;

  const page = async (vars: Record<string, unknown>) => {
    const res = await data(PAGE, { agreement: a, ...vars });
    expect(res.errors).toBeUndefined();
    return res.data!.things as {
      nodes: Node[];
      pageInfo: { hasNextPage: boolean; endCursor: string | null };
    };
  };

  const walk = async (vars: Record<string, unknown>, first: number) => {
    const all: Node[] = [];
    let after: string | null = null;
    for (let i = 0; i < 1000; i++) {
      const p = await page({ ...vars, first, after });
      all.push(...p.nodes);
      if (!p.pageInfo.hasNextPage) break;
      after = p.pageInfo.endCursor;
    }
    return all;
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'keyset' });
    const provider = await broker.createAgency('Provider');
    const recipient = await broker.createAgency('Recipient');
    const providerSteward = await broker.createUser({ agencyId: provider.id, role: 'STEWARD' });
    const recipientSteward = await broker.createUser({ agencyId: recipient.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: recipient.id, role: 'ANALYST' });
    agencyId = recipient.id;
    await broker.definePurposes('RESEARCH', 'OTHER');
    const dataset = await broker.registerDataset(providerSteward.apiKey, {
      slug: 'things',
      title: 'Things',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'd', type: 'DATE', classification: 'NON_SENSITIVE', required: true },
        { name: 's', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'n', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        { name: 'secret', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
      indexes: [['d'], ['s'], ['n']],
    });
    await broker.gqlOk(
      providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: ROWS },
    );
    const grant = (rowFilter: unknown) => ({
      datasetId: dataset.id,
      fields: [
        { name: 'id' },
        { name: 'd' },
        { name: 's' },
        { name: 'n' },
        { name: 'secret', transform: 'HASH' },
      ],
      rowFilter,
    });
    const input = (purposes: string[], rowFilter: unknown) => ({
      title: `Things for ${purposes.join(', ')}`,
      providerAgencyId: provider.id,
      recipientAgencyId: recipient.id,
      purposes,
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [grant(rowFilter)],
    });
    a = await broker.activateAgreement(
      providerSteward.apiKey,
      recipientSteward.apiKey,
      input(['RESEARCH'], { d: { $gte: '2020-01-15' } }),
    );
    c = await broker.activateAgreement(
      providerSteward.apiKey,
      recipientSteward.apiKey,
      input(['RESEARCH'], null),
    );
    b = await broker.activateAgreement(
      providerSteward.apiKey,
      recipientSteward.apiKey,
      input(['OTHER'], { d: { $gte: '2020-01-15' } }),
    );
    await broker.query(`ANALYZE records.things`);
  });
  afterAll(() => broker.close());

  const visible = ROWS.filter((r) => r.d >= '2020-01-15');
  const codePoints = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

  it('builds the indexes of the key, the default order, the declared fields and the row filter', async () => {
    const indexes = await broker.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'records' AND tablename = 'things' ORDER BY indexdef`,
    );
    const defs = indexes.map((i) => i.indexdef.replace(/^.* USING btree /, ''));
    expect(defs).toEqual(
      expect.arrayContaining([
        '(id)',
        '(id COLLATE "C")',
        '(_rid, id COLLATE "C")',
        '(d, _rid, id COLLATE "C")',
        '(s COLLATE "C", _rid, id COLLATE "C")',
        '(n, _rid, id COLLATE "C")',
      ]),
    );
    // No index, nor any other catalog object, holds an agreement's HMAC key.
    const [{ n }] = await broker.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_indexes WHERE indexdef ILIKE '%hmac%'`,
    );
    expect(n).toBe(0);
  });

  const orders: [string, Order, Record<string, unknown> | null][] = [
    ['the default order', [], null],
    ['the key ascending', [{ field: 'id' }], null],
    [
      'the key descending, a key range',
      [{ field: 'id', direction: 'DESC' }],
      { id: { gte: 'K00100', lt: 'K02500' } },
    ],
    ['a date ascending', [{ field: 'd' }], null],
    ['a date descending, a number range', [{ field: 'd', direction: 'DESC' }], { n: { gte: 10, lt: 40 } }],
    ['a string with nulls ascending', [{ field: 's' }], null],
    ['a string with nulls descending', [{ field: 's', direction: 'DESC' }], { s: { in: ['a', 'B', 'é'] } }],
    ['a number with nulls, then a string, mixed', [{ field: 'n' }, { field: 's', direction: 'DESC' }], null],
    ['a hash', [{ field: 'secret_hash', direction: 'DESC' }], { secret_hash: { isNull: false } }],
  ];

  it.each(orders)(
    'walks %s page after page: the same rows as one page, each once',
    async (_name, orderBy, where) => {
      const vars = { orderBy, where };
      const whole = (await page({ ...vars, first: 10_000 })).nodes;
      const walked = await walk(vars, 97);
      expect(walked.map((r) => r.id)).toEqual(whole.map((r) => r.id));
      expect(new Set(walked.map((r) => r.id)).size).toBe(walked.length);
      if (!where) expect(walked.length).toBe(visible.length);
    },
  );

  it('orders by the key and strings in code point order, nulls last ascending and first descending', async () => {
    const byKey = await walk({ orderBy: [{ field: 'id' }] }, 500);
    expect(byKey.map((r) => r.id)).toEqual(visible.map((r) => r.id).sort(codePoints));
    const byString = await walk({ orderBy: [{ field: 's' }] }, 500);
    const strings = byString.map((r) => r.s);
    const expected = visible
      .map((r) => r.s)
      .sort((x, y) => (x === null ? (y === null ? 0 : 1) : y === null ? -1 : codePoints(x, y)));
    expect(strings).toEqual(expected);
    const desc = await walk({ orderBy: [{ field: 's', direction: 'DESC' }] }, 500);
    expect(desc.map((r) => r.s)).toEqual([...expected].reverse());
  });

  describe('refuses a cursor of anything but the same query (BAD_USER_INPUT, INVALID)', () => {
    let cursor: string;
    beforeAll(async () => {
      cursor = (await page({ orderBy: [{ field: 'd' }], first: 5 })).pageInfo.endCursor!;
    });
    const refused = (res: { data?: unknown; errors?: { extensions?: Record<string, unknown> }[] }) => {
      expect(res.data).toBeNull();
      expect(res.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID' });
    };

    it('accepts it for the same query', async () => {
      const next = await page({ orderBy: [{ field: 'd' }], first: 5, after: cursor });
      expect(next.nodes).toHaveLength(5);
    });
    it('another ordering', async () => {
      refused(
        await data(PAGE, { agreement: a, orderBy: [{ field: 'd', direction: 'DESC' }], after: cursor }),
      );
      refused(await data(PAGE, { agreement: a, after: cursor }));
    });
    it('another filter', async () => {
      refused(
        await data(PAGE, { agreement: a, orderBy: [{ field: 'd' }], where: { n: { gt: 1 } }, after: cursor }),
      );
    });
    it('another agreement', async () => {
      refused(await data(PAGE, { agreement: c, orderBy: [{ field: 'd' }], after: cursor }));
    });
    it('another purpose', async () => {
      const res = await data(
        `query($after: String) { things(purpose: OTHER, orderBy: [{ field: d }], after: $after) { nodes { id } } }`,
        { after: cursor },
      );
      expect(b).toBeTruthy();
      refused(res);
    });
    it('tampered or made up', async () => {
      const flipped = cursor.slice(0, 20) + (cursor[20] === 'A' ? 'B' : 'A') + cursor.slice(21);
      for (const after of [flipped, cursor.slice(0, -2), `${cursor}AA`, 'bzoy', '!!', 'A'.repeat(70_000)]) {
        refused(await data(PAGE, { agreement: a, orderBy: [{ field: 'd' }], after }));
      }
    });
  });

  describe('EXPLAIN of the statements the broker runs', () => {
    /**
     * The plans of the page statement a request runs: planned for its values, as a DBA's query is,
     * and the generic plan of the statement prepared once (Database.read), which the broker runs once
     * PostgreSQL finds it as good, and which must read as few rows.
     */
    let prepared = 0;
    const plans = async (query: string): Promise<PlanNode[]> => {
      const policies = broker.app.get(PolicyCache);
      const dataPlane = broker.app.get(DataPlaneService);
      const policy = await policies.forAgency(agencyId, new Date());
      const decision = dataPlane.decide(policy, { query });
      if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
      const { text, values } = pageSql(decision.plans[0], true, agencyId);
      // The page's size is in the text, so that a generic plan knows it: never a parameter.
      expect(text).toMatch(/ LIMIT \d+\)/);
      expect(values).not.toContain(decision.plans[0].first + 1);
      const [row] = await broker.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
        `EXPLAIN (FORMAT JSON) ${text}`,
        values,
      );
      const generic = await broker.app.get(Database).connection(async (client) => {
        const name = `page_generic_${++prepared}`;
        await client.query({ name, text, values });
        // These shapes bind text, numbers and the HMAC key.
        const literals = values.map((v) => {
          if (Buffer.isBuffer(v)) return client.escapeLiteral(`\\x${v.toString('hex')}`);
          if (v !== null && typeof v === 'object') throw new Error('a value these shapes do not bind');
          return client.escapeLiteral(String(v));
        });
        await client.query(`SET plan_cache_mode = force_generic_plan`);
        try {
          const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
            `EXPLAIN (FORMAT JSON) EXECUTE ${name}${literals.length ? `(${literals.join(', ')})` : ''}`,
          );
          return rows[0]['QUERY PLAN'][0].Plan;
        } finally {
          await client.query(`RESET plan_cache_mode`);
          await client.query(`DEALLOCATE ${name}`);
        }
      });
      return [row['QUERY PLAN'][0].Plan, generic];
    };
    const cursorOf = async (vars: Record<string, unknown>) => {
      // A position deep in the walk: the 2,000th row.
      const p = await page({ ...vars, first: 2000 });
      return p.pageInfo.endCursor!;
    };

    it('lets PostgreSQL keep one plan only for pages whose best plan does not depend on their values', async () => {
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const stable = (args: string) => {
        const decision = broker.app.get(DataPlaneService).decide(policy, {
          query: `{ things(purpose: RESEARCH, agreement: "${c}", first: 10${args}) { nodes { id } } }`,
        });
        if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
        return planIsStable(decision.plans[0]);
      };
      // No filter; filters on the first ordering name only; an equality on the key.
      expect(stable('')).toBe(true);
      expect(stable(`, orderBy: [{ field: d }]`)).toBe(true);
      expect(stable(`, orderBy: [{ field: d }], where: { d: { gte: "2020-02-01", lt: "2020-03-01" } }`)).toBe(
        true,
      );
      expect(
        stable(
          `, orderBy: [{ field: s }, { field: d }], where: { or: [{ s: { in: ["a"] } }, { s: { isNull: true } }] }`,
        ),
      ).toBe(true);
      expect(stable(`, where: { id: { eq: "K00010" } }`)).toBe(true);
      // Any other filter: a value few rows have would want another plan than a common one.
      expect(stable(`, where: { s: { in: ["a"] } }`)).toBe(false);
      expect(stable(`, orderBy: [{ field: d }], where: { n: { gte: 10, lt: 20 } }`)).toBe(false);
      expect(stable(`, orderBy: [{ field: d }], where: { d: { gte: "2020-02-01" }, n: { eq: 3 } }`)).toBe(
        false,
      );
      expect(stable(`, where: { id: { gte: "K00010" } }`)).toBe(false);
      expect(stable(`, where: { id: { in: ["K00010"] } }`)).toBe(false);
      expect(stable(`, where: { and: [{ id: { eq: "K00010" } }] }`)).toBe(false);
      expect(stable(`, where: { secret_hash: { eq: "00" } }`)).toBe(false);
    });

    it('plans a page filtered on another name for its values every time, and keeps one plan for the others', async () => {
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const db = broker.app.get(Database);
      const plansOf = async (args: string) => {
        const decision = broker.app.get(DataPlaneService).decide(policy, {
          query: `{ things(purpose: RESEARCH, agreement: "${c}", first: 10${args}) { nodes { id } } }`,
        });
        if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
        const [only] = decision.plans;
        const { text, values } = pageSql(only, true, agencyId);
        const stablePlan = planIsStable(only);
        // One after the other, the pool hands out the same connection: the statement's own counts.
        for (let i = 0; i < 8; i++) await db.read(text, values, { stablePlan });
        const [counts] = await db.read<{ generic: number; custom: number }>(
          `SELECT generic_plans::int AS generic, custom_plans::int AS custom
             FROM pg_prepared_statements WHERE name = $1`,
          [statementName(text)],
          { stablePlan },
        );
        return counts;
      };
      // A rare value of another name: the plan made for it reads that name's index; a generic one
      // would walk the whole order's.
      expect(await plansOf(`, where: { s: { in: ["ab"] } }`)).toEqual({ generic: 0, custom: 8 });
      const stable = await plansOf(`, orderBy: [{ field: d }]`);
      expect(stable.generic).toBeGreaterThan(0);
      expect(stable.generic + stable.custom).toBe(8);
    });

    it('writes nothing but a page size from 1 to MAX_FIRST into the statement', async () => {
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const decision = broker.app.get(DataPlaneService).decide(policy, {
        query: `{ things(purpose: RESEARCH, agreement: "${a}", first: 7) { nodes { id } } }`,
      });
      if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
      const [ok] = decision.plans;
      expect(pageSql(ok, true, agencyId).text).toMatch(/ LIMIT 8\) t ORDER BY/);
      for (const first of [0, MAX_FIRST + 1, 1.5, NaN, '8) t; SELECT 1 --', 2 ** 53]) {
        expect(() => pageSql({ ...ok, first: first as number }, true, agencyId)).toThrow(PolicyError);
      }
    });

    it('selects each expression once: a name asked twice, a position the node or the row id holds', async () => {
      const policy = await broker.app.get(PolicyCache).forAgency(agencyId, new Date());
      const decision = broker.app.get(DataPlaneService).decide(policy, {
        query: `{ things(purpose: RESEARCH, agreement: "${a}", first: 3, orderBy: [{ field: d, direction: DESC }]) {
          nodes { x: d y: d id } } }`,
      });
      if (decision.kind !== 'run') throw new Error(JSON.stringify(decision));
      const { text } = pageSql(decision.plans[0], true, agencyId);
      const list = text.slice(0, text.indexOf(' FROM ('));
      const count = (column: string) => list.split(`"t"."${column}"`).length - 1;
      // d for x, y and the position; id for the node and the position; the row id for its record
      // and the position: each once.
      expect({ d: count('d'), id: count('id'), rid: count('_rid') }).toEqual({ d: 1, id: 1, rid: 1 });
      expect(list.match(/ AS /g)).toHaveLength(3);
    });

    it('walks the same rows whether the position is among the node values or not', async () => {
      const ALIASES = `query($agreement: ID, $orderBy: [ThingsOrderBy!], $first: Int, $after: String) {
        things(purpose: RESEARCH, agreement: $agreement, orderBy: $orderBy, first: $first, after: $after) {
          nodes { x: id y: id } pageInfo { hasNextPage endCursor } } }`;
      const orderBy = [{ field: 'd', direction: 'DESC' }, { field: 's' }];
      const ids: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 100; i++) {
        const res = await data(ALIASES, { agreement: a, orderBy, first: 97, after });
        expect(res.errors).toBeUndefined();
        const p = res.data!.things as {
          nodes: { x: string; y: string }[];
          pageInfo: { hasNextPage: boolean; endCursor: string };
        };
        for (const node of p.nodes) {
          expect(node.y).toBe(node.x);
          ids.push(node.x);
        }
        if (!p.pageInfo.hasNextPage) break;
        after = p.pageInfo.endCursor;
      }
      expect(ids).toEqual((await walk({ orderBy }, 211)).map((n) => n.id));
      expect(ids).toHaveLength(visible.length);
    });

    it.each([
      [
        'key-ordered pages of a key range',
        `orderBy: [{ field: id }], where: { id: { gte: "K00100", lt: "K02900" } }`,
        { orderBy: [{ field: 'id' }], where: { id: { gte: 'K00100', lt: 'K02900' } } },
      ],
      ['the default order', '', {}],
      [
        'a date descending',
        `orderBy: [{ field: d, direction: DESC }]`,
        { orderBy: [{ field: 'd', direction: 'DESC' }] },
      ],
      ['a required date ascending', `orderBy: [{ field: d }]`, { orderBy: [{ field: 'd' }] }],
    ])('%s: an index scan, no Sort, on the first page and deep', async (_name, args, vars) => {
      const cursor = await cursorOf(vars);
      for (const after of ['', `, after: ${JSON.stringify(cursor)}`]) {
        for (const root of await plans(
          `{ things(purpose: RESEARCH, agreement: "${a}", first: 10${args ? `, ${args}` : ''}${after}) { nodes { id d s } } }`,
        )) {
          const nodes = flatten(root);
          expect(nodes.map((n) => n['Node Type'])).not.toContain('Sort');
          expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan');
          const scans = nodes.filter((n) => /Index/.test(n['Node Type']) && n['Relation Name'] === 'things');
          expect(scans).toHaveLength(1);
          // The cursor is a bound of the index scan, not a filter over rows read from the start.
          if (after) expect(scans[0]['Index Cond']).toMatch(/ROW|>|</);
        }
      }
    });

    it.each([
      ['a string that may be null, ascending', `orderBy: [{ field: s }]`, { orderBy: [{ field: 's' }] }],
      ['a number that may be null, ascending', `orderBy: [{ field: n }]`, { orderBy: [{ field: 'n' }] }],
    ])('%s: deep, every branch of the cursor a bounded index range', async (_name, args, vars) => {
      const cursor = await cursorOf(vars);
      for (const root of await plans(
        `{ things(purpose: RESEARCH, agreement: "${a}", first: 10, ${args}, after: ${JSON.stringify(cursor)}) { nodes { id s n } } }`,
      )) {
        const nodes = flatten(root);
        expect(nodes.map((n) => n['Node Type'])).not.toContain('Seq Scan');
        // After a value: greater values, then the nulls, then equal values after the row's tie-break;
        // each read through the index (a scan of it, or a bitmap of it where few rows are equal).
        const scans = nodes.filter((n) => n['Relation Name'] === 'things');
        expect(scans).toHaveLength(3);
        for (const scan of scans) {
          expect(scan['Node Type']).toMatch(/^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
          expect(scan['Index Cond'] ?? scan['Recheck Cond']).toBeDefined();
        }
        // Each branch is cut at the page (LIMIT right above its scan): no branch reads from the start.
        const limits = nodes.filter((n) => n['Node Type'] === 'Limit');
        expect(limits.length).toBeGreaterThanOrEqual(4);
      }
    });
  });
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Plans?: PlanNode[];
}

function flatten(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(flatten)];
}
