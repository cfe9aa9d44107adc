import fc from 'fast-check';
import { TestBroker } from '@broker/testing';

/**
 * Filters on GENERALIZE names against a model of the released values written here (DESIGN §4.2:
 * a prefix is the value's first 3 characters, a band `floor(v / 5) * 5`, a year the date's year;
 * strings compare in code-point order; null matches no comparison), on operands nobody shaped for
 * the implementation: the raw values themselves and their longer and shorter cuts, random Unicode
 * strings, any integer. A filter must answer from the released value alone: a row's unreleased
 * characters after its prefix, or its value within its band or year, never change whether it is
 * returned (else a binary search over filters reads the raw value back).
 */

const DATA = '/data/graphql';
const PURPOSE = 'PROGRAM_EVALUATION';

interface Raw {
  id: string;
  s: string | null;
  n: number | null;
  d: string | null;
}

/** Values with shared prefixes, shorter than a prefix, astral characters and combining marks. */
const STRINGS = [
  'abc',
  'abcd',
  'abcde',
  'abcz',
  'abd',
  'ab',
  'a',
  '',
  'Zürich',
  'Zürigo',
  "O'Brien",
  'Émile',
  'e\u0301tude',
  '日本語テキスト',
  '日本',
  '😀😀😀x',
  '😀😀',
  '\uffff\uffffz',
  '93304',
  '93305',
  '93203',
];
const ROWS: Raw[] = [];
for (let i = 0; i < 60; i++) {
  ROWS.push({
    id: `R${String(i).padStart(3, '0')}`,
    s: i % 11 === 10 ? null : STRINGS[i % STRINGS.length],
    n: i % 13 === 12 ? null : ((i * 37) % 61) - 30,
    d: i % 9 === 8 ? null : `${1990 + ((i * 7) % 17)}-${String(1 + (i % 12)).padStart(2, '0')}-15`,
  });
}

/** Code-point order, as PostgreSQL's "C" collation of UTF-8 text compares (not UTF-16 units). */
function compare(a: string, b: string): number {
  const x = [...a].map((ch) => ch.codePointAt(0)!);
  const y = [...b].map((ch) => ch.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const released = (r: Raw) => ({
  id: r.id,
  s_prefix: r.s === null ? null : [...r.s].slice(0, 3).join(''),
  n_band: r.n === null ? null : Math.floor(r.n / 5) * 5,
  d_year: r.d === null ? null : Number(r.d.slice(0, 4)),
});
type Released = ReturnType<typeof released>;
type Name = 's_prefix' | 'n_band' | 'd_year';
type Op = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'nin' | 'isNull';
interface Leaf {
  name: Name;
  op: Op;
  value: string | number | boolean | (string | number)[];
}
type Where = { leaf: Leaf } | { and: Where[] } | { or: Where[] } | { not: Where };

/** Three-valued: true, false or null (unknown). */
function holds(leaf: Leaf, row: Released): boolean | null {
  const v = row[leaf.name];
  if (leaf.op === 'isNull') return (v === null) === leaf.value;
  if (v === null) return null;
  const cmp = (x: string | number) => (typeof v === 'string' ? compare(v, x as string) : v - (x as number));
  const value = leaf.value as string | number;
  switch (leaf.op) {
    case 'eq':
      return cmp(value) === 0;
    case 'neq':
      return cmp(value) !== 0;
    case 'gt':
      return cmp(value) > 0;
    case 'gte':
      return cmp(value) >= 0;
    case 'lt':
      return cmp(value) < 0;
    case 'lte':
      return cmp(value) <= 0;
    case 'in':
      return (leaf.value as (string | number)[]).some((x) => cmp(x) === 0);
    case 'nin':
      return !(leaf.value as (string | number)[]).some((x) => cmp(x) === 0);
  }
}

function evaluate(where: Where, row: Released): boolean | null {
  if ('leaf' in where) return holds(where.leaf, row);
  if ('not' in where) {
    const inner = evaluate(where.not, row);
    return inner === null ? null : !inner;
  }
  const values = ('and' in where ? where.and : where.or).map((w) => evaluate(w, row));
  if ('and' in where) return values.includes(false) ? false : values.includes(null) ? null : true;
  return values.includes(true) ? true : values.includes(null) ? null : false;
}

function toGraphql(where: Where): Record<string, unknown> {
  if ('leaf' in where) return { [where.leaf.name]: { [where.leaf.op]: where.leaf.value } };
  if ('not' in where) return { not: toGraphql(where.not) };
  if ('and' in where) return { and: where.and.map(toGraphql) };
  return { or: where.or.map(toGraphql) };
}

/** Operands of each released name: cuts of the raw values (longer than a prefix too), and noise. */
const cuts = STRINGS.flatMap((s) => [...s].map((_, i) => [...s].slice(0, i + 1).join('')));
const stringOperand = fc.oneof(
  fc.constantFrom(...STRINGS, ...cuts),
  fc.constantFrom(...STRINGS).map((s) => `${s}${String.fromCodePoint(0x10ffff)}`),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', 'z', 'ü', '😀'), maxLength: 6 }),
);
const numberOperand = fc.oneof(fc.integer({ min: -40, max: 40 }), fc.constantFrom(-2147483648, 2147483647));
const yearOperand = fc.integer({ min: 1985, max: 2010 });
const comparisons = ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'] as const;

function leafOf(name: Name, operand: fc.Arbitrary<string | number>): fc.Arbitrary<Leaf> {
  return fc.oneof(
    fc.record({ name: fc.constant(name), op: fc.constantFrom(...comparisons), value: operand }),
    fc.record({
      name: fc.constant(name),
      op: fc.constantFrom('in' as const, 'nin' as const),
      value: fc.array(operand, { minLength: 1, maxLength: 3 }),
    }),
    fc.record({ name: fc.constant(name), op: fc.constant('isNull' as const), value: fc.boolean() }),
  );
}

const leaf: fc.Arbitrary<Where> = fc
  .oneof(
    { weight: 4, arbitrary: leafOf('s_prefix', stringOperand) },
    { weight: 2, arbitrary: leafOf('n_band', numberOperand) },
    { weight: 1, arbitrary: leafOf('d_year', yearOperand) },
  )
  .map((l) => ({ leaf: l }));
const where: fc.Arbitrary<Where> = fc.letrec<{ w: Where }>((tie) => ({
  w: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: leaf },
    fc.array(tie('w'), { minLength: 1, maxLength: 3 }).map((and) => ({ and })),
    fc.array(tie('w'), { minLength: 1, maxLength: 3 }).map((or) => ({ or })),
    tie('w').map((not) => ({ not })),
  ),
})).w;

describe('filters on GENERALIZE names', () => {
  let broker: TestBroker;
  let analyst: string;

  const ask = async (w: Where, route: 'page' | 'export' = 'page'): Promise<string[]> => {
    const query = `query($w: PeopleWhere) { people(purpose: ${PURPOSE}, where: $w, first: 1000) { nodes { id } } }`;
    if (route === 'page') {
      const res = await broker.gql(analyst, query, { w: toGraphql(w) }, DATA);
      if (res.errors) throw new Error(JSON.stringify(res.errors));
      return (res.data as { people: { nodes: { id: string }[] } }).people.nodes.map((n) => n.id).sort();
    }
    const res = await broker.http.inject({
      method: 'POST',
      url: '/data/export',
      headers: {
        authorization: `Bearer ${analyst}`,
        accept: 'application/x-ndjson',
        'content-type': 'application/json',
      },
      payload: { query, variables: { w: toGraphql(w) } },
    });
    expect(res.statusCode).toBe(200);
    return res.body
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { id: string }).id)
      .sort();
  };
  const expected = (w: Where) =>
    ROWS.map(released)
      .filter((r) => evaluate(w, r) === true)
      .map((r) => r.id)
      .sort();

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'generalize_filters' });
    const parties = await broker.sharingParties('Courts', 'Research office', PURPOSE);
    analyst = parties.analyst.apiKey;
    const dataset = await broker.registerDataset(parties.providerSteward.apiKey, {
      slug: 'people',
      title: 'People',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        { name: 's', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        { name: 'n', type: 'INTEGER', classification: 'QUASI_IDENTIFIER' },
        { name: 'd', type: 'DATE', classification: 'QUASI_IDENTIFIER' },
      ],
    });
    const body = ROWS.map((r) => JSON.stringify(r)).join('\n');
    expect(
      (await broker.upload(parties.providerSteward.apiKey, dataset.id, 'application/x-ndjson', body)).status,
    ).toBe(200);
    await broker.activateAgreement(parties.providerSteward.apiKey, parties.recipientSteward.apiKey, {
      title: 'People, generalised',
      providerAgencyId: parties.providerAgency.id,
      recipientAgencyId: parties.recipientAgency.id,
      purposes: [PURPOSE],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [
            { name: 'id' },
            { name: 's', transform: 'GENERALIZE' },
            { name: 'n', transform: 'GENERALIZE' },
            { name: 'd', transform: 'GENERALIZE' },
          ],
        },
      ],
    });
  });
  afterAll(() => broker?.close());

  it("answers a prefix's lt and lte from the prefix alone, for operands longer than it", async () => {
    // The row "abcd" and the row "abcz" both release "abc": no filter tells them apart.
    for (const op of ['lt', 'lte'] as const) {
      for (const value of [
        'abcd',
        'abce',
        'abcz',
        'abc\u{10ffff}',
        'abd',
        'abc',
        'ab',
        '933',
        '9330',
        '93304',
      ]) {
        const w: Where = { leaf: { name: 's_prefix', op, value } };
        expect({ op, value, ids: await ask(w) }).toEqual({ op, value, ids: expected(w) });
      }
    }
    const abcd = ROWS.filter((r) => r.s === 'abcd').map((r) => r.id);
    const abcz = ROWS.filter((r) => r.s === 'abcz').map((r) => r.id);
    for (const value of ['abcd', 'abce', 'abcz', 'abd']) {
      const ids = await ask({ leaf: { name: 's_prefix', op: 'lt', value } });
      expect(abcd.every((id) => ids.includes(id))).toBe(abcz.every((id) => ids.includes(id)));
    }
  });

  it('answers any filter as the model of released values does, in pages and exports (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(where, fc.boolean(), async (w, exporting) => {
        expect(await ask(w, exporting ? 'export' : 'page')).toEqual(expected(w));
      }),
      { numRuns: 150, seed: 20261206 },
    );
  });
});
