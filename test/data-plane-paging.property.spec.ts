/**
 * Walking every page of an ordered, filtered row query, checked against a reference model written
 * from DESIGN.md (§2.3 minimum necessary, §2.4 consent, §4.1 transforms, §4.2 filters, orderBy,
 * first/after, code-point order, nulls ordering, ties), not from the implementation.
 *
 * Each run registers a dataset of its own with random records (duplicates, nulls, unicode and
 * emoji, strings differing only in case or accents, negative numbers, dates across years, instants
 * around New Year), releases it under a random grant (RAW, HASH, GENERALIZE; a random row filter;
 * consent, with some subjects withdrawn or never asked), and walks random queries page by page.
 *
 * Where DESIGN is silent, the implementation was read for the shape only, and it says so here:
 * - HASH hashes the value's text as JSON would write it (`String(v)`; an instant as ISO 8601 with
 *   milliseconds), as test/data-plane.property.spec.ts does.
 * - A row without a subject (null `subjectField`) has no consent: a grant requiring consent never
 *   releases it (DESIGN: "per-subject consent"; a row of no subject has none).
 * - DESIGN names no `totalCount`: the contract's `PageInfo` is `{ hasNextPage endCursor }`, and that is
 *   what is checked.
 * - Ties: DESIGN says they break "on a random row id"; that id is the row's own, so a page walk and an
 *   export of the same query give the same order, and the export is compared with the pages in order.
 *
 * A failure prints its seed; `FC_SEED=<seed>` replays it, `FC_RUNS` changes the number of runs.
 */
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { TestBroker } from '@broker/testing';

type Kind = 'STRING' | 'INTEGER' | 'FLOAT' | 'BOOLEAN' | 'DATE' | 'DATETIME';
type Transform = 'RAW' | 'HASH' | 'GENERALIZE';
type Value = string | number | boolean | null;
type Row = Record<string, Value>;
/** How a released value compares: DESIGN's types of released names. */
type Order = 'string' | 'number' | 'date' | 'instant' | 'boolean';

const PURPOSE = 'RESEARCH';
const SUBJECTS = ['P0', 'P1', 'P2', 'P3', 'P4'];

// The dataset's fields besides its key `id` and its subject `person`.
const FIELDS: [string, Kind][] = [
  ['s', 'STRING'],
  ['n', 'INTEGER'],
  ['x', 'FLOAT'],
  ['d', 'DATE'],
  ['t', 'DATETIME'],
  ['b', 'BOOLEAN'],
];
const KIND: Record<string, Kind> = { id: 'STRING', person: 'STRING', ...Object.fromEntries(FIELDS) };

// --- value pools: where code-point order, case, accents and UTF-16 disagree -------------------

/**
 * Strings whose code-point order differs from a locale's (case, accents, ß) and from UTF-16's
 * (U+FF5A and U+FFFD sort before an emoji by code point, after it by UTF-16 unit), with shared
 * 3-character prefixes, emoji prefixes (3 code points are 6 UTF-16 units) and combining accents.
 */
const STRINGS = [
  '',
  ' a',
  'a',
  'A',
  'b',
  'B',
  'ab',
  'abc',
  'abcd',
  'Abc',
  'abC',
  'á',
  'à',
  'ä',
  'é',
  'e\u0301',
  'e',
  'E',
  'ß',
  'ss',
  'SS',
  'z',
  '\uff5a',
  '\ufffd',
  '😀',
  '😀x',
  '😀😁😂a',
  '😀😁😂b',
  '𝔸𝔹',
  '日本語です',
  'Ω',
  'ω',
];
const KEYS = [
  'k1',
  'K1',
  'k10',
  'k2',
  'é1',
  'e1',
  'É',
  'E',
  '😀1',
  '\uff5a1',
  'z1',
  'a',
  'A',
  'Z',
  'ß',
  'ss',
  '0',
  '-1',
  'a b',
  'ab',
  'ａ',
  '𝔸',
  'Ω',
  'k\u0301',
  'k3',
  'k4',
  'k5',
  'k6',
  'k7',
  'k8',
  'k9',
  'k11',
  'K2',
  'é2',
  'Ä',
  'ä',
  'a\u0300',
  'à',
  '😀2',
  '😁',
  '\uff5a2',
  'zz',
];
const INTS = [-2147483, -100, -11, -10, -6, -5, -4, -1, 0, 1, 4, 5, 9, 10, 14, 15, 99];
const DATES = [
  '1899-12-31',
  '1900-01-01',
  '1969-12-31',
  '1970-01-01',
  '1999-12-31',
  '2000-01-01',
  '2000-02-29',
  '2019-06-15',
  '2020-01-01',
  '2020-12-31',
  '2024-12-31',
  '2101-01-01',
];
const INSTANTS = [
  '1969-12-31T23:59:59.000Z',
  '1970-01-01T00:00:00.000Z',
  '1999-12-31T23:30:00.000Z',
  '2000-01-01T00:30:00.000Z',
  '2019-12-31T23:59:59.999Z',
  '2020-01-01T00:00:00.000Z',
  '2020-06-15T12:00:00.000Z',
  '2024-02-29T08:15:30.500Z',
];

// --- the reference model (DESIGN §4.1, §4.2) ------------------------------------------------

/** Strings compare in code-point order (DESIGN §4.2), not in JavaScript's UTF-16 order. */
function codePointCompare(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
}

/** The released name of a field under a transform (the transform table). */
function releasedName(field: string, transform: Transform): string {
  if (transform === 'RAW') return field;
  if (transform === 'HASH') return `${field}_hash`;
  const kind = KIND[field];
  if (kind === 'DATE' || kind === 'DATETIME') return `${field}_year`;
  return kind === 'STRING' ? `${field}_prefix` : `${field}_band`;
}

function releasedOrder(field: string, transform: Transform): Order {
  if (transform === 'HASH') return 'string';
  const kind = KIND[field];
  if (transform === 'GENERALIZE') return kind === 'STRING' ? 'string' : 'number';
  return kind === 'STRING'
    ? 'string'
    : kind === 'DATE'
      ? 'date'
      : kind === 'DATETIME'
        ? 'instant'
        : kind === 'BOOLEAN'
          ? 'boolean'
          : 'number';
}

/** "Its first 3 characters": characters are code points, so an emoji is one. */
const prefix = (v: string) => Array.from(v).slice(0, 3).join('');

function releasedValue(field: string, transform: Transform, v: Value, key: Buffer): Value {
  if (v === null) return null;
  const kind = KIND[field];
  if (transform === 'RAW') return v;
  // Read from the implementation (DESIGN is silent on the text hashed): the value as JSON writes it.
  if (transform === 'HASH') return createHmac('sha256', key).update(String(v)).digest('hex');
  if (kind === 'DATE') return Number((v as string).slice(0, 4));
  if (kind === 'DATETIME') return new Date(v as string).getUTCFullYear();
  if (kind === 'STRING') return prefix(v as string);
  return Math.floor((v as number) / 5) * 5;
}

/** Compares two non-null values of one released type. */
function compareValues(order: Order, a: Value, b: Value): number {
  switch (order) {
    case 'string':
      return codePointCompare(a as string, b as string);
    case 'date':
      // 'YYYY-MM-DD' with four-digit years: text order is date order.
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    case 'instant':
      return Math.sign(Date.parse(a as string) - Date.parse(b as string));
    case 'boolean':
      return Number(a) - Number(b);
    case 'number':
      return Math.sign((a as number) - (b as number));
  }
}

type Truth = boolean | null;
const and3 = (xs: Truth[]): Truth => (xs.includes(false) ? false : xs.includes(null) ? null : true);
const or3 = (xs: Truth[]): Truth => (xs.includes(true) ? true : xs.includes(null) ? null : false);
const not3 = (x: Truth): Truth => (x === null ? null : !x);

/** SQL's three-valued comparison: a null value matches no comparison (DESIGN §4.2). */
function compare3(order: Order, op: string, a: Value, b: Value | Value[]): Truth {
  if (a === null) return null;
  const list = () => (b as Value[]).map((y) => compareValues(order, a, y) === 0);
  switch (op) {
    case 'eq':
    case '$eq':
      return compareValues(order, a, b as Value) === 0;
    case 'neq':
    case '$ne':
      return compareValues(order, a, b as Value) !== 0;
    case 'gt':
    case '$gt':
      return compareValues(order, a, b as Value) > 0;
    case 'gte':
    case '$gte':
      return compareValues(order, a, b as Value) >= 0;
    case 'lt':
    case '$lt':
      return compareValues(order, a, b as Value) < 0;
    case 'lte':
    case '$lte':
      return compareValues(order, a, b as Value) <= 0;
    case 'in':
    case '$in':
      return list().includes(true);
    case 'nin':
    case '$nin':
      return !list().includes(true);
  }
  throw new Error(`unknown operator ${op}`);
}

type RowFilter = { [k: string]: unknown };
/** An agreement's row filter on raw values, with the same three-valued logic (DESIGN §4.2). */
function evalRowFilter(filter: RowFilter, row: Row): Truth {
  return and3(
    Object.entries(filter).map(([k, v]) => {
      if (k === '$and') return and3((v as RowFilter[]).map((f) => evalRowFilter(f, row)));
      if (k === '$or') return or3((v as RowFilter[]).map((f) => evalRowFilter(f, row)));
      const order = releasedOrder(k, 'RAW');
      return and3(
        Object.entries(v as Record<string, Value | Value[]>).map(([op, operand]) =>
          compare3(order, op, row[k], operand),
        ),
      );
    }),
  );
}

type Where = { [k: string]: unknown };
function evalWhere(where: Where, node: Row, orders: Map<string, Order>): Truth {
  return and3(
    Object.entries(where).map(([k, v]) => {
      if (k === 'and') return and3((v as Where[]).map((w) => evalWhere(w, node, orders)));
      if (k === 'or') return or3((v as Where[]).map((w) => evalWhere(w, node, orders)));
      if (k === 'not') return not3(evalWhere(v as Where, node, orders));
      return and3(
        Object.entries(v as Record<string, Value | Value[]>).map(([op, operand]) =>
          op === 'isNull' ? (node[k] === null) === operand : compare3(orders.get(k)!, op, node[k], operand),
        ),
      );
    }),
  );
}

type OrderBy = { field: string; direction: 'ASC' | 'DESC' }[];
/** The ordering of DESIGN §4.2: nulls last ascending, first descending; 0 for a tie. */
function compareNodes(orderBy: OrderBy, orders: Map<string, Order>, a: Row, b: Row): number {
  for (const { field, direction } of orderBy) {
    const [x, y] = [a[field], b[field]];
    let c: number;
    if (x === null || y === null) c = x === y ? 0 : x === null ? 1 : -1;
    else c = compareValues(orders.get(field)!, x, y);
    if (c !== 0) return direction === 'ASC' ? c : -c;
  }
  return 0;
}

// --- generators -------------------------------------------------------------------------------

const nullable = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 4 });
const quarter = fc.integer({ min: -120, max: 120 }).map((q) => (q === 0 ? 0 : q / 4));
const dateArb = fc.oneof(
  fc.constantFrom(...DATES),
  fc
    .record({
      y: fc.integer({ min: 1950, max: 2035 }),
      m: fc.integer({ min: 1, max: 12 }),
      d: fc.integer({ min: 1, max: 28 }),
    })
    .map(({ y, m, d }) => `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`),
);
const instantArb = fc.oneof(
  fc.constantFrom(...INSTANTS),
  fc
    .integer({ min: Date.UTC(1960, 0, 1) / 1000, max: Date.UTC(2035, 0, 1) / 1000 })
    .map((s) => new Date(s * 1000).toISOString()),
);
/** Raw values of a field, for records and for the operands of row filters. */
const rawArb: Record<string, fc.Arbitrary<Value>> = {
  id: fc.constantFrom(...KEYS),
  person: fc.constantFrom(...SUBJECTS),
  s: fc.constantFrom(...STRINGS),
  n: fc.oneof(fc.constantFrom(...INTS), fc.integer({ min: -30, max: 30 })),
  x: quarter,
  d: dateArb,
  t: instantArb,
  b: fc.boolean(),
};

/** An instant written with another UTC offset: the same instant, another text (ISO 8601 allows it). */
const offsetSpelling = (iso: string) => {
  const shifted = new Date(Date.parse(iso) + 2 * 3_600_000).toISOString();
  return `${shifted.slice(0, 23)}+02:00`;
};
/** A raw value of `field`: mostly one the records hold, so that filters select some rows, not none. */
function valueArb(field: string, rows: Row[]): fc.Arbitrary<Value> {
  const held = rows.map((r) => r[field]).filter((v) => v !== null);
  return held.length
    ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...held) }, { weight: 1, arbitrary: rawArb[field] })
    : rawArb[field];
}
/** An operand for a filter on raw `field`; an instant sometimes written with another offset. */
const operandArb = (field: string, rows: Row[]): fc.Arbitrary<Value> =>
  field === 't'
    ? fc
        .tuple(valueArb(field, rows), fc.boolean())
        .map(([v, offset]) => (offset ? offsetSpelling(v as string) : v))
    : valueArb(field, rows);

const recordsArb: fc.Arbitrary<Row[]> = fc
  .uniqueArray(fc.constantFrom(...KEYS), { minLength: 0, maxLength: KEYS.length, size: 'max' })
  .chain((ids) =>
    fc.tuple(
      ...ids.map((id) =>
        fc.record({
          id: fc.constant(id),
          person: nullable(rawArb.person),
          s: nullable(rawArb.s),
          n: nullable(rawArb.n),
          x: nullable(rawArb.x),
          d: nullable(rawArb.d),
          t: nullable(rawArb.t),
          b: nullable(rawArb.b),
        }),
      ),
    ),
  )
  .map((rows) => rows as Row[]);

const RANGE_OPS = ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte'];
const rowCondition = (rows: Row[]): fc.Arbitrary<RowFilter> =>
  fc.constantFrom('id', 'person', ...FIELDS.map(([f]) => f)).chain((field) =>
    KIND[field] === 'BOOLEAN'
      ? fc
          .record({ op: fc.constantFrom('$eq', '$ne'), v: fc.boolean() })
          .map(({ op, v }) => ({ [field]: { [op]: v } }))
      : fc.oneof(
          fc
            .record({ op: fc.constantFrom(...RANGE_OPS), v: operandArb(field, rows) })
            .map(({ op, v }) => ({ [field]: { [op]: v } })),
          // A range: two bounds on one field.
          fc
            .record({
              lo: fc.constantFrom('$gt', '$gte'),
              hi: fc.constantFrom('$lt', '$lte'),
              a: operandArb(field, rows),
              b: operandArb(field, rows),
            })
            .map(({ lo, hi, a, b }) => {
              // Mostly a range some values fall in: bounds in order (an empty one, now and then).
              const [x, y] = compareValues(releasedOrder(field, 'RAW'), a, b) > 0 ? [b, a] : [a, b];
              return { [field]: { [lo]: x, [hi]: y } };
            }),
          fc
            .record({
              op: fc.constantFrom('$in', '$nin'),
              v: fc.array(operandArb(field, rows), { minLength: 1, maxLength: 4 }),
            })
            .map(({ op, v }) => ({ [field]: { [op]: v } })),
        ),
  );
const rowFilterArb = (rows: Row[]): fc.Arbitrary<RowFilter | null> => {
  const condition = rowCondition(rows);
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 2, arbitrary: condition },
    {
      weight: 2,
      arbitrary: fc.array(condition, { minLength: 2, maxLength: 3 }).map((cs) => ({ $or: cs })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(condition, condition, condition)
        .map(([a, b, c]) => ({ $and: [a, { $or: [b, c] }] })),
    },
  );
};

type Consent = 'never' | 'granted' | 'withdrawn' | 'refused' | 'regranted' | 'otherPurposeOnly';
const CONSENT_HISTORY: Record<Consent, [string, boolean][]> = {
  never: [],
  granted: [[PURPOSE, true]],
  withdrawn: [
    [PURPOSE, true],
    [PURPOSE, false],
  ],
  refused: [[PURPOSE, false]],
  regranted: [
    [PURPOSE, false],
    [PURPOSE, true],
  ],
  otherPurposeOnly: [['OTHER', true]],
};
const consentArb = fc.constantFrom<Consent>(
  'granted',
  'granted',
  'regranted',
  ...(Object.keys(CONSENT_HISTORY) as Consent[]),
);

const transformArb = (kind: Kind) =>
  fc.constantFrom<Transform | null>(
    ...((kind === 'BOOLEAN'
      ? [null, 'RAW', 'HASH']
      : [null, 'RAW', 'RAW', 'HASH', 'GENERALIZE', 'GENERALIZE']) as (Transform | null)[]),
  );

interface Grant {
  transforms: Record<string, Transform | null>;
  rowFilter: RowFilter | null;
  requireConsent: boolean;
  consent: Record<string, Consent>;
}
const grantArb = (rows: Row[]): fc.Arbitrary<Grant> =>
  fc.record({
    transforms: fc.record({
      person: fc.constantFrom<Transform | null>(null, 'RAW', 'HASH'),
      ...Object.fromEntries(FIELDS.map(([f, k]) => [f, transformArb(k)])),
    }),
    rowFilter: rowFilterArb(rows),
    requireConsent: fc.nat(2).map((n) => n === 0),
    consent: fc.record(Object.fromEntries(SUBJECTS.map((s) => [s, consentArb]))),
  });

/** The released names of a grant, with the field and transform each comes from; `id` always RAW. */
function releasedOf(grant: Grant): Map<string, [string, Transform]> {
  const out = new Map<string, [string, Transform]>([['id', ['id', 'RAW']]]);
  for (const [field, t] of Object.entries(grant.transforms)) {
    if (t) out.set(releasedName(field, t), [field, t]);
  }
  return out;
}

/** A HASH operand is written as the raw value it hashes; the agreement's key is known only later. */
type HashOf = { hashOf: Value };
type Operand = Value | HashOf;

function whereOperandArb(field: string, t: Transform, rows: Row[]): fc.Arbitrary<Operand> {
  if (t === 'HASH') return valueArb(field, rows).map((v) => ({ hashOf: v }));
  if (t === 'RAW') return operandArb(field, rows);
  const kind = KIND[field];
  // A generalized value of a record's (the key is not needed for these), or any of the type.
  const held = valueArb(field, rows).map((v) => releasedValue(field, t, v, Buffer.alloc(0)));
  if (kind === 'STRING') return fc.oneof(held, fc.constantFrom(...STRINGS).map(prefix));
  if (kind === 'DATE' || kind === 'DATETIME') return fc.oneof(held, fc.integer({ min: 1898, max: 2102 }));
  return fc.oneof(
    held,
    fc.integer({ min: -12, max: 12 }).map((k) => k * 5),
    fc.integer({ min: -60, max: 60 }),
  );
}

function leafArb(rows: Row[], name: string, field: string, t: Transform): fc.Arbitrary<Where> {
  const v = whereOperandArb(field, t, rows);
  const isNull = fc.boolean().map((b) => ({ [name]: { isNull: b } }));
  if (t === 'RAW' && KIND[field] === 'BOOLEAN') {
    return fc.oneof(
      v.map((x) => ({ [name]: { eq: x } })),
      isNull,
    );
  }
  return fc.oneof(
    fc.record({ op: fc.constantFrom('eq', 'neq', 'gt', 'gte', 'lt', 'lte'), v }).map(({ op, v }) => ({
      [name]: { [op]: v },
    })),
    fc
      .record({ lo: fc.constantFrom('gt', 'gte'), hi: fc.constantFrom('lt', 'lte'), a: v, b: v })
      .map(({ lo, hi, a, b }) => {
        const ordered = t === 'HASH' || compareValues(releasedOrder(field, t), a as Value, b as Value) <= 0;
        return { [name]: { [lo]: ordered ? a : b, [hi]: ordered ? b : a } };
      }),
    fc
      .record({ op: fc.constantFrom('in', 'nin'), v: fc.array(v, { maxLength: 3 }) })
      .map(({ op, v }) => ({ [name]: { [op]: v } })),
    isNull,
  );
}

function whereArb(released: Map<string, [string, Transform]>, rows: Row[]): fc.Arbitrary<Where | null> {
  const leaf = fc
    .constantFrom(...released.keys())
    .chain((name) => leafArb(rows, name, ...released.get(name)!));
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 3, arbitrary: leaf },
    { weight: 1, arbitrary: leaf.map((w) => ({ not: w })) },
    {
      weight: 1,
      arbitrary: fc.array(leaf, { minLength: 2, maxLength: 3 }).map((ws) => ({ or: ws })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(leaf, leaf, leaf).map(([a, b, c]) => ({ and: [a, { or: [b, { not: c }] }] })),
    },
  );
}

interface Query {
  where: Where | null;
  orderBy: OrderBy;
  first: number;
  exported: boolean;
}
function queryArb(released: Map<string, [string, Transform]>, rows: Row[]): fc.Arbitrary<Query> {
  return fc.record({
    where: whereArb(released, rows),
    orderBy: fc.uniqueArray(
      fc.record({
        field: fc.constantFrom(...released.keys()),
        direction: fc.constantFrom<'ASC' | 'DESC'>('ASC', 'DESC'),
      }),
      { minLength: 0, maxLength: 2, selector: (o) => o.field },
    ),
    first: fc.integer({ min: 1, max: 7 }),
    exported: fc.nat(3).map((n) => n === 0),
  });
}

interface Scenario {
  rows: Row[];
  grant: Grant;
  queries: Query[];
}
const scenarioArb: fc.Arbitrary<Scenario> = recordsArb
  .chain((rows) => fc.record({ rows: fc.constant(rows), grant: grantArb(rows) }))
  .chain(({ rows, grant }) =>
    fc
      .array(queryArb(releasedOf(grant), rows), { minLength: 1, maxLength: 3 })
      .map((queries) => ({ rows, grant, queries })),
  );

/** Replaces each HASH operand with the hash the agreement's key gives its value. */
function resolveHashes(
  where: unknown,
  name: string | null,
  key: Buffer,
  released: Map<string, [string, Transform]>,
): unknown {
  if (Array.isArray(where)) return where.map((w) => resolveHashes(w, name, key, released));
  if (where && typeof where === 'object') {
    if ('hashOf' in where) {
      const [field, t] = released.get(name!)!;
      return releasedValue(field, t, (where as HashOf).hashOf, key);
    }
    return Object.fromEntries(
      Object.entries(where).map(([k, v]) => [k, resolveHashes(v, released.has(k) ? k : name, key, released)]),
    );
  }
  return where;
}

// --- the test ---------------------------------------------------------------------------------

const pascal = (slug: string) => slug.replace(/(^|_)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());

describe('data plane: walking every page of a query against a reference model (property-based)', () => {
  let broker: TestBroker;
  let parties: Awaited<ReturnType<TestBroker['sharingParties']>>;
  let runs = 0;

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dp_paging' });
    parties = await broker.sharingParties('Provider', 'Recipient', PURPOSE, 'OTHER');
  });
  afterAll(() => broker.close());

  /** Registers a dataset, ingests the rows, records consent and brings the agreement into force. */
  async function setUp(sc: Scenario) {
    const { providerAgency, recipientAgency, providerSteward, recipientSteward } = parties;
    const slug = `paging_r${++runs}`;
    const dataset = await broker.registerDataset(providerSteward.apiKey, {
      slug,
      title: `Paging ${runs}`,
      keyField: 'id',
      subjectField: 'person',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE', required: true },
        { name: 'person', type: 'STRING', classification: 'QUASI_IDENTIFIER' },
        // One SENSITIVE field: released other than as HASH, the version needs oversight.
        ...FIELDS.map(([name, type]) => ({
          name,
          type,
          classification: name === 'x' ? 'SENSITIVE' : 'NON_SENSITIVE',
        })),
      ],
    });
    if (sc.rows.length) {
      await broker.gqlOk(
        providerSteward.apiKey,
        `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
        { id: dataset.id, r: sc.rows },
      );
    }
    if (sc.grant.requireConsent) {
      for (const subjectId of SUBJECTS) {
        for (const [purpose, granted] of CONSENT_HISTORY[sc.grant.consent[subjectId]]) {
          await broker.gqlOk(
            providerSteward.apiKey,
            `mutation($input: ConsentInput!) { recordConsent(input: $input) { id } }`,
            { input: { datasetId: dataset.id, subjectId, purpose, granted } },
          );
        }
      }
    }
    const released = releasedOf(sc.grant);
    const agreement = await broker.activateAgreement(providerSteward.apiKey, recipientSteward.apiKey, {
      title: `Paging ${runs}`,
      providerAgencyId: providerAgency.id,
      recipientAgencyId: recipientAgency.id,
      purposes: [PURPOSE],
      validFrom: '2020-01-01T00:00:00Z',
      validUntil: '2099-01-01T00:00:00Z',
      grants: [
        {
          datasetId: dataset.id,
          fields: [...released.values()].map(([name, transform]) => ({ name, transform })),
          rowFilter: sc.grant.rowFilter,
          requireConsent: sc.grant.requireConsent,
        },
      ],
    });
    const [{ hmac_key: key }] = await broker.query<{ hmac_key: Buffer }>(
      `SELECT hmac_key FROM agreement_secret WHERE agreement_id = $1`,
      [agreement],
    );
    return { slug, agreement, key, released };
  }

  /** The model's answer: every row the grant releases, as released nodes. */
  function modelNodes(sc: Scenario, released: Map<string, [string, Transform]>, key: Buffer): Row[] {
    const consented = (row: Row) =>
      !sc.grant.requireConsent ||
      (row.person !== null && ['granted', 'regranted'].includes(sc.grant.consent[row.person as string]));
    return sc.rows
      .filter(
        (row) => (!sc.grant.rowFilter || evalRowFilter(sc.grant.rowFilter, row) === true) && consented(row),
      )
      .map((row) =>
        Object.fromEntries(
          [...released].map(([name, [field, t]]) => [name, releasedValue(field, t, row[field], key)]),
        ),
      );
  }

  async function check(sc: Scenario) {
    const { slug, agreement, key, released } = await setUp(sc);
    try {
      const orders = new Map([...released].map(([name, [field, t]]) => [name, releasedOrder(field, t)]));
      const visible = modelNodes(sc, released, key);
      const names = [...released.keys()];
      const type = pascal(slug);
      const PAGE = `query($where: ${type}Where, $orderBy: [${type}OrderBy!], $first: Int, $after: String) {
        ${slug}(purpose: ${PURPOSE}, where: $where, orderBy: $orderBy, first: $first, after: $after) {
          nodes { ${names.join(' ')} } pageInfo { hasNextPage endCursor } } }`;

      for (const q of sc.queries) {
        const where = q.where && (resolveHashes(q.where, null, key, released) as Where);
        const expected = visible.filter((node) => !where || evalWhere(where, node, orders) === true);
        const byId = new Map(expected.map((node) => [node.id as string, node]));
        const label = JSON.stringify({ where, orderBy: q.orderBy, first: q.first });

        const walked: Row[] = [];
        let after: string | null = null;
        let firstCursor: string | null = null;
        for (let pageNo = 0; ; pageNo++) {
          // A page per `first` rows, and one more at most: a walk that does not end is a failure.
          if (pageNo > Math.ceil(expected.length / q.first) + 1) throw new Error(`no last page: ${label}`);
          const res = await broker.gql(
            parties.analyst.apiKey,
            PAGE,
            { where, orderBy: q.orderBy, first: q.first, after },
            '/data/graphql',
          );
          if (res.errors) throw new Error(`${label}: ${JSON.stringify(res.errors)}`);
          const page = res.data![slug] as {
            nodes: Row[];
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
          };
          for (const node of page.nodes) {
            // No page holds a row outside the row filter, the consent or the where filter.
            expect({ label, node: byId.get(node.id as string) ?? 'not released' }).toEqual({ label, node });
          }
          walked.push(...page.nodes);
          // Every page but the last is full; the last says so, and there is a last one.
          const more = walked.length < expected.length;
          expect({ label, pageNo, hasNextPage: page.pageInfo.hasNextPage }).toEqual({
            label,
            pageNo,
            hasNextPage: more,
          });
          if (!page.pageInfo.hasNextPage) {
            expect(page.nodes.length).toBeLessThanOrEqual(q.first);
            break;
          }
          expect({ label, size: page.nodes.length }).toEqual({ label, size: q.first });
          expect(typeof page.pageInfo.endCursor).toBe('string');
          after = page.pageInfo.endCursor;
          if (pageNo === 0) firstCursor = after;
        }

        // Exactly the model's rows, each once.
        const ids = walked.map((node) => node.id as string);
        expect({ label, ids: [...ids].sort(codePointCompare) }).toEqual({
          label,
          ids: expected.map((node) => node.id as string).sort(codePointCompare),
        });
        // In the order asked for; ties in any order.
        for (let i = 1; i < walked.length; i++) {
          const c = compareNodes(q.orderBy, orders, walked[i - 1], walked[i]);
          if (c > 0) throw new Error(`out of order at ${i}: ${label}\n${JSON.stringify(walked, null, 1)}`);
        }

        if (q.exported) {
          // The same query exported (DESIGN §4.2): every row, in the pages' order; with `first`, the
          // first page; from the first page's cursor, the rest.
          const exported = async (args: string) => {
            const response = await broker.http.inject({
              method: 'POST',
              url: '/data/export',
              headers: {
                authorization: `Bearer ${parties.analyst.apiKey}`,
                accept: 'application/x-ndjson',
                'content-type': 'application/json',
              },
              payload: {
                query: `query($where: ${type}Where, $orderBy: [${type}OrderBy!]) {
                  ${slug}(purpose: ${PURPOSE}, where: $where, orderBy: $orderBy${args}) { nodes { ${names.join(' ')} } } }`,
                variables: { where, orderBy: q.orderBy },
              },
            });
            const failed = response.statusCode === 200 ? null : response.body;
            expect({ label, args, status: response.statusCode, failed }).toEqual({
              label,
              args,
              status: 200,
              failed: null,
            });
            return response.body
              .split('\n')
              .filter((l) => l !== '')
              .map((l) => JSON.parse(l) as Row);
          };
          expect({ label, rows: await exported('') }).toEqual({ label, rows: walked });
          expect({ label, rows: await exported(`, first: ${q.first}`) }).toEqual({
            label,
            rows: walked.slice(0, q.first),
          });
          if (firstCursor !== null) {
            expect({ label, rows: await exported(`, after: ${JSON.stringify(firstCursor)}`) }).toEqual({
              label,
              rows: walked.slice(q.first),
            });
          }
        }
      }
    } finally {
      await broker.gqlOk(
        parties.providerSteward.apiKey,
        `mutation($id: ID!) { revokeAgreement(id: $id, reason: "done") { id } }`,
        { id: agreement },
      );
    }
  }

  describe('regressions (deterministic)', () => {
    // Ties, nulls, an emoji beside U+FF5A, strings differing only in case or accent.
    const rows: Row[] = [
      { id: 'k1', person: 'P0', s: '😀😁😂a', n: -5, x: -0.25, d: '1999-12-31', t: INSTANTS[2], b: true },
      { id: 'K1', person: 'P1', s: '\uff5a', n: -5, x: 4.75, d: '2000-01-01', t: INSTANTS[3], b: false },
      { id: 'é1', person: 'P2', s: 'e\u0301', n: 0, x: null, d: null, t: INSTANTS[4], b: null },
      { id: 'e1', person: null, s: 'é', n: 4, x: 5, d: '2000-02-29', t: null, b: true },
      { id: '😀1', person: 'P3', s: null, n: null, x: -5, d: '2019-06-15', t: INSTANTS[5], b: false },
      { id: '\uff5a1', person: 'P4', s: 'A', n: 10, x: 0, d: '1969-12-31', t: INSTANTS[0], b: true },
      { id: 'a', person: 'P0', s: 'a', n: 9, x: 9.75, d: '2101-01-01', t: INSTANTS[1], b: null },
      { id: 'ß', person: 'P1', s: 'ss', n: -11, x: -10, d: '1899-12-31', t: INSTANTS[7], b: false },
    ];
    const grant = (transforms: Record<string, Transform | null>): Grant => ({
      transforms: { person: null, s: null, n: null, x: null, d: null, t: null, b: null, ...transforms },
      rowFilter: null,
      requireConsent: false,
      consent: {},
    });

    // The export's count and release list leave the order out when every row is exported, but kept
    // the values only the order read: ordered by a HASH name, the agreement's key was a parameter the
    // statement never used, PostgreSQL could not type it, and the export answered 503.
    it('exports a query ordered by a HASH name: every row, the first page, the rest from a cursor', async () => {
      await check({
        rows,
        grant: grant({ s: 'HASH', n: 'RAW', b: 'HASH', t: 'GENERALIZE' }),
        queries: [
          { where: null, orderBy: [{ field: 'b_hash', direction: 'DESC' }], first: 1, exported: true },
          {
            where: { n: { gte: -5 } },
            orderBy: [
              { field: 't_year', direction: 'ASC' },
              { field: 's_hash', direction: 'ASC' },
            ],
            first: 3,
            exported: true,
          },
        ],
      });
    });

    it('walks code-point order, generalized strings and years, and ties, one row a page', async () => {
      await check({
        rows,
        grant: grant({ s: 'GENERALIZE', n: 'GENERALIZE', x: 'RAW', t: 'GENERALIZE', d: 'RAW', b: 'RAW' }),
        queries: [
          { where: null, orderBy: [{ field: 'id', direction: 'ASC' }], first: 1, exported: true },
          { where: null, orderBy: [{ field: 's_prefix', direction: 'DESC' }], first: 2, exported: true },
          {
            where: { or: [{ x: { lt: 0 } }, { not: { n_band: { in: [] } } }] },
            orderBy: [
              { field: 'n_band', direction: 'ASC' },
              { field: 't_year', direction: 'DESC' },
            ],
            first: 1,
            exported: true,
          },
          {
            where: { d: { gte: '1900-01-01', lt: '2101-01-01' }, b: { isNull: false } },
            orderBy: [{ field: 'b', direction: 'DESC' }],
            first: 2,
            exported: false,
          },
        ],
      });
    });
  });

  it('walks every page: exactly the model rows, each once, in order, full pages, the right pageInfo', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, (sc) => check(sc)),
      {
        numRuns: Number(process.env.FC_RUNS ?? 60),
        seed: Number(process.env.FC_SEED ?? 20261206),
        endOnFailure: true,
      },
    );
  }, 300_000);
});
