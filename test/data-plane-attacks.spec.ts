/**
 * An outside reviewer's attacks on the data plane, written from the contract (DESIGN §4.2,
 * docs/disclosure-control.md) before reading the enforcement. Those the broker holds stay here as
 * regression tests; two were findings: a refusal's audit event left out the refused name when it
 * was a filter's or an ordering's, and the threshold oracle of aggregates (below).
 */
import { TestBroker } from '@broker/testing';

const DATA = '/data/graphql';
const NAMES = ['Alice', 'Bob', '=HYPERLINK("http://x.invalid/"&A1)', '+1+1', '-2+3', '@SUM(1)', 'Zed', null];
/** Subjects P0..P19, P0..P14 consenting to RESEARCH; SEALED lies outside agreement A's row filter. */
const ROWS = [
  ...Array.from({ length: 60 }, (_, i) => ({
    id: `K${String(i).padStart(3, '0')}`,
    person: `P${i % 20}` as string | null,
    name: NAMES[i % NAMES.length],
    age: 20 + ((i * 7) % 40),
    offense: i % 10 === 0 ? 'SEALED' : i % 3 === 0 ? null : ['DUI', 'THEFT'][i % 2],
  })),
  // No subject at all: under a grant that requires consent, nobody consented for them.
  { id: 'K900', person: null, name: 'NoSubject', age: 30, offense: 'DUI' },
  { id: 'K901', person: '', name: 'EmptySubject', age: 30, offense: 'DUI' },
];
const consented = (person: string | null) => person !== null && /^P([0-9]|1[0-4])$/.test(person);
/** The rows agreement A releases: its row filter (three-valued) and consent. */
const underA = ROWS.filter((r) => r.offense !== null && r.offense !== 'SEALED' && consented(r.person));

type Answer = { status: number; data: any; errors?: { message: string; extensions?: Record<string, any> }[] };

describe('data plane attacks: names, nulls, consent, exports', () => {
  let broker: TestBroker;
  let analyst: { id: string; apiKey: string };
  let datasetId: string;
  let A: string; // ROWS: id name offense age_band, row filter and consent
  let B: string; // ROWS: id offense, every row
  let C: string; // AGGREGATE_ONLY: offense age_band, minimum 5

  const ask = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
    broker.http
      .inject({
        method: 'POST',
        url: DATA,
        headers: { authorization: `Bearer ${analyst.apiKey}` },
        payload: { query, variables, operationName },
      })
      .then((r) => ({ status: r.statusCode, ...(JSON.parse(r.body) as Omit<Answer, 'status'>) }));
  const exportAs = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
    broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: {
        authorization: `Bearer ${analyst.apiKey}`,
        accept: 'text/csv',
        'content-type': 'application/json',
      },
      payload: { query, variables, operationName },
    });
  const ids = (answer: Answer) => {
    expect(answer.errors).toBeUndefined();
    return (answer.data.cases.nodes as { id: string }[]).map((n) => n.id).sort();
  };
  const denials = async (field: string) => {
    const rows = await broker.query<{ n: string }>(
      `SELECT count(*) AS n FROM audit_event
        WHERE actor_user_id = $1 AND decision = 'DENY' AND reason = 'FIELD_NOT_RELEASED' AND $2 = ANY(fields)`,
      [analyst.id, field],
    );
    return Number(rows[0].n);
  };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dp_attacks', AGGREGATE_DAILY_BUDGET: '3' });
    const parties = await broker.sharingParties('Provider', 'Recipient', 'RESEARCH');
    analyst = parties.analyst;
    const p = parties.providerSteward.apiKey;
    const r = parties.recipientSteward.apiKey;
    ({ id: datasetId } = await broker.registerDataset(p, {
      slug: 'cases',
      title: 'Cases',
      keyField: 'id',
      subjectField: 'person',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'name', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 'age', type: 'INTEGER', classification: 'NON_SENSITIVE' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    }));
    await broker.gqlOk(
      p,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: datasetId, r: ROWS },
    );
    for (let i = 0; i < 15; i++) {
      await broker.gqlOk(p, `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`, {
        input: { datasetId, subjectId: `P${i}`, purpose: 'RESEARCH', granted: true },
      });
    }
    const base = {
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: ['RESEARCH'],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
    };
    A = await broker.activateAgreement(p, r, {
      ...base,
      title: 'A',
      grants: [
        {
          datasetId,
          fields: [
            { name: 'id' },
            { name: 'name' },
            { name: 'offense' },
            { name: 'age', transform: 'GENERALIZE' },
          ],
          rowFilter: { offense: { $ne: 'SEALED' } },
          requireConsent: true,
        },
      ],
    });
    B = await broker.activateAgreement(p, r, {
      ...base,
      title: 'B',
      grants: [{ datasetId, fields: [{ name: 'id' }, { name: 'offense' }] }],
    });
    C = await broker.activateAgreement(p, r, {
      ...base,
      title: 'C',
      grants: [
        {
          datasetId,
          access: 'AGGREGATE_ONLY',
          minCellSize: 5,
          fields: [{ name: 'offense' }, { name: 'age', transform: 'GENERALIZE' }],
        },
      ],
    });
  }, 120_000);
  afterAll(() => broker.close());

  it('refuses a name the chosen agreement does not release, however the request reaches it, and audits it', async () => {
    // `name` is in the caller's schema (A releases it) but B does not release it.
    const rows = (args: string, selection = 'id') =>
      `cases(purpose: RESEARCH, agreement: "${B}", first: 3${args}) { nodes { ${selection} } }`;
    const attempts: [string, Record<string, unknown>?, string?][] = [
      [`query($w: CasesWhere) { ${rows(', where: $w')} }`, { w: { name: { eq: 'Alice' } } }],
      [`query($w: CasesWhere = {name: {eq: "Alice"}}) { ${rows(', where: $w')} }`],
      [`query($s: StringFilter = {eq: "Alice"}) { ${rows(', where: {and: [{name: $s}]}')} }`],
      [`query($v: [String!] = ["Alice"]) { ${rows(', where: {not: {name: {in: $v}}}')} }`],
      [`query($o: [CasesOrderBy!]) { ${rows(', orderBy: $o')} }`, { o: [{ field: 'name' }] }],
      [`query($f: CasesField = name) { ${rows(', orderBy: [{field: $f}]')} }`],
      [`{ ${rows('', '...F')} } fragment F on Cases { id name }`],
      [`{ ${rows('', '... on Cases { name }')} }`],
      [`query($yes: Boolean = true) { ${rows('', 'id name @include(if: $yes)')} }`],
      [`{ ${rows('', 'id name @skip(if: false)')} }`],
      [`query X { ${rows('')} } query Y { ${rows('', 'name')} }`, undefined, 'Y'],
      [
        `query($g: [CasesField!] = [name]) { cases_aggregate(purpose: RESEARCH, agreement: "${C}", groupBy: $g) { groups { count } } }`,
      ],
      [
        `query($w: CasesWhere) { cases_aggregate(purpose: RESEARCH, agreement: "${C}", where: $w, groupBy: []) { groups { count } } }`,
        { w: { name: { eq: 'Alice' } } },
      ],
    ];
    const before = await denials('name');
    for (const [query, variables, operationName] of attempts) {
      const answer = await ask(query, variables, operationName);
      expect([query, answer.data]).toEqual([query, null]);
      expect(answer.errors![0].extensions).toMatchObject({
        code: 'FORBIDDEN',
        reason: 'FIELD_NOT_RELEASED',
        field: 'name',
      });
      const exported = await exportAs(query, variables, operationName);
      expect([query, exported.statusCode]).toEqual([query, 403]);
      expect(JSON.parse(exported.body).errors[0].extensions.field).toBe('name');
    }
    // The other operation of the document, and a name skipped, are answered.
    const x = await ask(`query X { ${rows('')} } query Y { ${rows('', 'name')} }`, undefined, 'X');
    expect(x.data.cases.nodes).toHaveLength(3);
    expect(Object.keys(x.data.cases.nodes[0])).toEqual(['id']);
    // Every refusal of /data/graphql and of /data/export is a DENY naming the field (never its value).
    for (let i = 0; i < 50 && (await denials('name')) < before + attempts.length * 2; i++)
      await new Promise((res) => setTimeout(res, 100));
    expect(await denials('name')).toBeGreaterThanOrEqual(before + attempts.length * 2);
    const leaked = await broker.query(`SELECT 1 FROM audit_event WHERE details::text LIKE '%Alice%'`);
    expect(leaked).toEqual([]);
  });

  it('matches no null with nin, not in, or not eq, even of an empty list (three-valued logic)', async () => {
    const all = ROWS.filter((r) => r.offense !== null)
      .map((r) => r.id)
      .sort();
    for (const where of [
      '{offense: {nin: []}}',
      '{not: {offense: {in: []}}}',
      '{not: {offense: {eq: "X"}}}',
      '{offense: {nin: ["X"]}}',
    ]) {
      const answer = await ask(
        `{ cases(purpose: RESEARCH, agreement: "${B}", where: ${where}, first: 1000) { nodes { id } } }`,
      );
      expect([where, ids(answer)]).toEqual([where, all]);
    }
    // A tautology of the caller's never widens the row filter or consent.
    const taut = await ask(
      `{ cases(purpose: RESEARCH, agreement: "${A}", first: 1000, where: {or: [{offense: {isNull: true}}, {not: {offense: {isNull: true}}}]}) { nodes { id } } }`,
    );
    expect(ids(taut)).toEqual(underA.map((r) => r.id).sort());
  });

  it('never releases a record without a subject under a grant that requires consent, in rows or counts', async () => {
    const answer = await ask(
      `{ cases(purpose: RESEARCH, agreement: "${A}", where: {id: {in: ["K900", "K901"]}}) { nodes { id } } }`,
    );
    expect(ids(answer)).toEqual([]);
    const counts = await ask(
      `{ cases_aggregate(purpose: RESEARCH, agreement: "${A}", groupBy: [offense]) { groups { key count suppressed } noise } }`,
    );
    expect(counts.data.cases_aggregate).toEqual({
      noise: 0,
      groups: ['DUI', 'THEFT'].map((offense) => ({
        key: { offense },
        count: underA.filter((r) => r.offense === offense).length,
        suppressed: false,
      })),
    });
  });

  it('perturbs counts under an AGGREGATE_ONLY agreement though another agreement releases the same rows', async () => {
    const answer = await ask(
      `{ cases_aggregate(purpose: RESEARCH, agreement: "${C}", groupBy: [offense]) { groups { key count } noise } }`,
    );
    expect(answer.data.cases_aggregate.noise).toBe(2);
  });

  it('breaks ties of a GENERALIZE ordering by row id, never by the raw value', async () => {
    const page = (orderBy: string) =>
      ask(`{ cases(purpose: RESEARCH, agreement: "${A}", first: 1000${orderBy}) { nodes { id age_band } } }`);
    const byBand = (await page(', orderBy: [{field: age_band}]')).data.cases.nodes as {
      id: string;
      age_band: number;
    }[];
    const byRowId = (await page('')).data.cases.nodes as { id: string; age_band: number }[];
    for (const band of new Set(byBand.map((n) => n.age_band))) {
      const of = (nodes: typeof byBand) => nodes.filter((n) => n.age_band === band).map((n) => n.id);
      expect(of(byBand)).toEqual(of(byRowId));
    }
  });

  it('exports a value that a spreadsheet would read as a formula exactly as the page releases it', async () => {
    // Documented (docs/architecture.md, "Exports"): CSV cells are released values, quoted, never
    // rewritten; import them as text, or use NDJSON.
    const res = await exportAs(
      `{ cases(purpose: RESEARCH, agreement: "${A}", where: {name: {in: ["+1+1", "@SUM(1)"]}}) { nodes { name } } }`,
    );
    const formula = await exportAs(
      `{ cases(purpose: RESEARCH, agreement: "${A}", where: {name: {eq: "=HYPERLINK(\\"http://x.invalid/\\"&A1)"}}, first: 1) { nodes { name } } }`,
    );
    expect(res.statusCode).toBe(200);
    const expected = underA.filter((r) => r.name === '+1+1' || r.name === '@SUM(1)');
    expect(res.body.trim().split('\n').slice(1).sort()).toEqual(expected.map((r) => `"${r.name}"`).sort());
    expect(formula.body).toBe('name\n"=HYPERLINK(""http://x.invalid/""&A1)"\n');
  });

  it('spends one unit of the budget per perturbed aggregate, aliases included: past it, nothing leaves', async () => {
    const agg = (alias: string, by: string) =>
      `${alias}: cases_aggregate(purpose: RESEARCH, agreement: "${C}", groupBy: [${by}]) { groups { count } }`;
    // One spent above; four more in one request pass the budget of 3.
    const answer = await ask(
      `{ ${agg('a', '')} ${agg('b', 'offense')} ${agg('c', 'age_band')} ${agg('d', 'offense, age_band')} }`,
    );
    expect(answer.data).toBeNull();
    expect(answer.errors![0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
  });
});

/**
 * The threshold oracle. A perturbed answer leaves out groups below the minimum m; when it listed
 * every other group, a group's presence was an exact test of "at least m records". Under an
 * AGGREGATE_ONLY grant that releases a fine name (here a DATETIME), the analyst grows a window of
 * time until its count appears and steps back to the last absent window: exactly m - 1 records,
 * known for certain in about 30 aggregates. Sets of a known size are what exact small counts are
 * made of (a target added to m - 1 records appears iff it has one; to m - 2, iff it has two...).
 * Now a group of m or m + 1 is also left out when its draw takes it below m, so an absent window
 * may hold up to m + 1 and no window's size is known from presence alone. That the union with a
 * target differs from the window alone still proves the target exists, when it does differ: the
 * set-equality limit of any consistent perturbation (docs/disclosure-control.md).
 */
describe('data plane attacks: the threshold oracle of aggregates', () => {
  const SEED = 20261207;
  const M = 5;
  const BASE = Date.UTC(2021, 0, 1);
  const TARGETS = 16;
  const STOPS = Array.from({ length: 220 }, (_, i) => ({
    stop_id: `S${String(i).padStart(3, '0')}`,
    at: BASE + i * 37 * 60_000 + ((i * 7919) % 60_000),
    offense: i < TARGETS ? `RARE${i}` : ['DUI', 'THEFT', 'FRAUD'][i % 3],
  }));
  let broker: TestBroker;
  let analyst: { apiKey: string };
  let agreement: string;

  beforeAll(async () => {
    broker = await TestBroker.start({
      LABEL: 'dp_threshold',
      AGGREGATE_DAILY_BUDGET: '100000',
      AGGREGATE_AGREEMENT_DAILY_BUDGET: '100000',
    });
    await broker.query(`UPDATE data_plane_secret SET cursor_key = sha256(convert_to($1::text, 'UTF8'))`, [
      String(SEED),
    ]);
    const parties = await broker.sharingParties('Police', 'Research', 'RESEARCH');
    analyst = parties.analyst;
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'stops',
      title: 'Stops',
      keyField: 'stop_id',
      fields: [
        { name: 'stop_id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'at', type: 'DATETIME', classification: 'NON_SENSITIVE' },
        { name: 'offense', type: 'STRING', classification: 'NON_SENSITIVE' },
      ],
    });
    await broker.gqlOk(
      parties.providerSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: STOPS.map((s) => ({ ...s, at: new Date(s.at).toISOString() })) },
    );
    await broker.query(
      `UPDATE records.stops SET _rid = (hashtext(stop_id || $1::text) & 2147483647)::bigint << 16`,
      [String(SEED)],
    );
    agreement = await broker.activateAgreement(
      parties.providerSteward.apiKey,
      parties.recipientSteward.apiKey,
      {
        title: 'Stops, counts only',
        providerAgencyId: parties.providerAgency.id,
        recipientAgencyId: parties.recipientAgency.id,
        purposes: ['RESEARCH'],
        validFrom: '2020-01-01T00:00:00Z',
        validUntil: '2099-01-01T00:00:00Z',
        grants: [
          {
            datasetId: dataset.id,
            access: 'AGGREGATE_ONLY',
            minCellSize: M,
            fields: [{ name: 'at' }, { name: 'offense' }],
          },
        ],
      },
    );
  }, 120_000);
  afterAll(() => broker.close());

  type Where = Record<string, unknown>;
  const iso = (ms: number) => new Date(ms).toISOString();
  const window = (from: number, to: number): Where => ({
    and: [{ at: { gte: iso(from) } }, { at: { lt: iso(to) } }],
  });
  const truth = (matches: (s: (typeof STOPS)[number]) => boolean) => STOPS.filter(matches).length;

  /** One total: its count if listed, else null; every answer checked against the truth. */
  const total = async (where: Where, n: number): Promise<number | null> => {
    const res = await broker.gql(
      analyst.apiKey,
      `query($a: ID!, $w: StopsWhere) { stops_aggregate(purpose: RESEARCH, agreement: $a, where: $w, groupBy: []) {
        groups { count suppressed } noise } }`,
      { a: agreement, w: where },
      DATA,
    );
    expect(res.errors).toBeUndefined();
    const answer = res.data!.stops_aggregate as {
      groups: { count: number; suppressed: boolean }[];
      noise: number;
    };
    expect(answer.noise).toBe(2);
    if (!answer.groups.length) {
      // Left out: below the minimum, or at most one above it, drawn below.
      expect(n).toBeLessThanOrEqual(M + 1);
      return null;
    }
    const [group] = answer.groups;
    expect(n).toBeGreaterThanOrEqual(M);
    expect(group.suppressed).toBe(false);
    expect(group.count).toBeGreaterThanOrEqual(M);
    expect(Math.abs(group.count - n)).toBeLessThanOrEqual(2);
    return group.count;
  };

  it('gives no exact test of the minimum: the last absent window is not always below it', async () => {
    const end = STOPS[STOPS.length - 1].at + 86_400_000;
    const boundaries: number[] = [];
    for (let j = 0; j < TARGETS; j++) {
      const from = STOPS[TARGETS + j * 11].at;
      const inWindow = (to: number) => (s: (typeof STOPS)[number]) => s.at >= from && s.at < to;
      // The attacker's search for the window whose count first appears.
      let lo = from;
      let hi = end;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if ((await total(window(from, mid), truth(inWindow(mid)))) === null) lo = mid;
        else hi = mid;
      }
      boundaries.push(truth(inWindow(lo)));
      // The target (before the window) added to the last absent window: answered within the rule.
      const target = `RARE${j}`;
      const union = { or: [window(from, lo), { offense: { eq: target } }] };
      await total(
        union,
        truth((s) => inWindow(lo)(s) || s.offense === target),
      );
    }
    // Before, every last absent window held exactly M - 1 records. Now some hold M or M + 1.
    expect(boundaries.some((n) => n >= M)).toBe(true);
    expect(boundaries.every((n) => n >= M - 1 && n <= M + 1)).toBe(true);
  });
});
