/**
 * Random agreements × random queries against the data plane, checked against a reference model
 * written from DESIGN.md §2 and §4.2, not from the implementation: no value leaks, no wrong denial.
 */
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { TestBroker, withOversightText } from '@broker/testing';

type Kind = 'STRING' | 'INTEGER' | 'FLOAT' | 'BOOLEAN' | 'DATE' | 'DATETIME';
type Transform = 'RAW' | 'HASH' | 'GENERALIZE';
type Value = string | number | boolean | null;
type Row = Record<string, Value>;

const FIELDS: [string, Kind][] = [
  ['s', 'STRING'],
  ['i', 'INTEGER'],
  ['f', 'FLOAT'],
  ['b', 'BOOLEAN'],
  ['d', 'DATE'],
  ['t', 'DATETIME'],
];
const KIND = Object.fromEntries(FIELDS) as Record<string, Kind>;
const PURPOSES = ['RECIDIVISM_EVALUATION', 'PROGRAM_ADMINISTRATION'];

// Deterministic rows with nulls, duplicates and edge values.
function makeRows(): Row[] {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const maybe = <T>(v: T): T | null => (next() < 0.15 ? null : v);
  return Array.from({ length: 36 }, (_, n) => ({
    id: `R${n}`,
    s: maybe(pick(['ann', 'anna', 'bob', 'bobby', 'carl', 'zed', 'al', 'annabel'])),
    i: maybe(Math.floor(next() * 60) - 20),
    f: maybe((Math.floor(next() * 160) - 40) / 4),
    b: maybe(next() < 0.5),
    d: maybe(`${1990 + Math.floor(next() * 40)}-0${1 + Math.floor(next() * 9)}-1${Math.floor(next() * 9)}`),
    t: maybe(
      new Date(
        Date.UTC(
          2000 + Math.floor(next() * 30),
          Math.floor(next() * 12),
          1 + Math.floor(next() * 27),
          Math.floor(next() * 24),
          30,
        ),
      ).toISOString(),
    ),
  }));
}
const ROWS = makeRows();

// --- the reference model --------------------------------------------------------------------

/** The released name of a field under a transform (DESIGN §4.1, transform table). */
function releasedName(field: string, transform: Transform): string {
  if (transform === 'RAW') return field;
  if (transform === 'HASH') return `${field}_hash`;
  const kind = KIND[field];
  return kind === 'DATE' || kind === 'DATETIME'
    ? `${field}_year`
    : kind === 'STRING'
      ? `${field}_prefix`
      : `${field}_band`;
}

function canonicalText(kind: Kind, v: Exclude<Value, null>): string {
  if (kind === 'BOOLEAN') return v ? 'true' : 'false';
  return String(v);
}

function releasedValue(field: string, transform: Transform, v: Value, key: Buffer): Value {
  if (v === null) return null;
  const kind = KIND[field];
  if (transform === 'RAW') return v;
  if (transform === 'HASH') return createHmac('sha256', key).update(canonicalText(kind, v)).digest('hex');
  if (kind === 'DATE' || kind === 'DATETIME') return Number(String(v).slice(0, 4));
  if (kind === 'STRING') return String(v).slice(0, 3);
  return Math.floor((v as number) / 5) * 5;
}

/** SQL's three-valued comparison: null when either side is null. */
function compare(op: string, a: Value, b: Value | Value[]): boolean | null {
  if (a === null) return null;
  if (op === 'in' || op === '$in') return (b as Value[]).some((x) => x === a);
  if (op === 'nin' || op === '$nin') return !(b as Value[]).some((x) => x === a);
  const x = a;
  const y = b as string | number | boolean;
  switch (op) {
    case 'eq':
    case '$eq':
      return x === y;
    case 'neq':
    case '$ne':
      return x !== y;
    case 'gt':
    case '$gt':
      return x > y;
    case 'gte':
    case '$gte':
      return x >= y;
    case 'lt':
    case '$lt':
      return x < y;
    case 'lte':
    case '$lte':
      return x <= y;
  }
  throw new Error(op);
}
const and3 = (xs: (boolean | null)[]) => (xs.includes(false) ? false : xs.includes(null) ? null : true);
const or3 = (xs: (boolean | null)[]) => (xs.includes(true) ? true : xs.includes(null) ? null : false);
const not3 = (x: boolean | null) => (x === null ? null : !x);

type RowFilter = Record<string, unknown>;
function evalRowFilter(filter: RowFilter, row: Row): boolean | null {
  return and3(
    Object.entries(filter).map(([k, v]) => {
      if (k === '$and') return and3((v as RowFilter[]).map((f) => evalRowFilter(f, row)));
      if (k === '$or') return or3((v as RowFilter[]).map((f) => evalRowFilter(f, row)));
      const ops = v as Record<string, Value | Value[]>;
      return and3(Object.entries(ops).map(([op, operand]) => compare(op, row[k], operand)));
    }),
  );
}

type Where = Record<string, unknown>;
function evalWhere(where: Where, node: Row): boolean | null {
  return and3(
    Object.entries(where).map(([k, v]) => {
      if (k === 'and') return and3((v as Where[]).map((w) => evalWhere(w, node)));
      if (k === 'or') return or3((v as Where[]).map((w) => evalWhere(w, node)));
      if (k === 'not') return not3(evalWhere(v as Where, node));
      return and3(
        Object.entries(v as Record<string, Value | Value[]>).map(([op, operand]) =>
          op === 'isNull' ? (node[k] === null) === operand : compare(op, node[k], operand),
        ),
      );
    }),
  );
}

// --- generators -----------------------------------------------------------------------------

const transformFor = (kind: Kind): fc.Arbitrary<Transform | null> =>
  fc.constantFrom<Transform | null>(
    ...((kind === 'BOOLEAN'
      ? [null, 'RAW', 'HASH']
      : [null, 'RAW', 'HASH', 'GENERALIZE']) as (Transform | null)[]),
  );

/** A value of the released type of `name`, for filters on names no visible row has a value for. */
function fallbackOperand(name: string): Value {
  if (name.endsWith('_hash') || name.endsWith('_prefix')) return 'ann';
  if (name.endsWith('_year') || name.endsWith('_band')) return 1;
  return {
    STRING: 'ann',
    INTEGER: 1,
    FLOAT: 1.5,
    BOOLEAN: true,
    DATE: '2000-01-01',
    DATETIME: '2000-01-01T00:00:00.000Z',
  }[KIND[name]];
}

const rawOperand = (field: string): fc.Arbitrary<Value> => {
  const values = ROWS.map((r) => r[field]).filter((v) => v !== null);
  return fc.constantFrom(...values);
};

const rowCondition: fc.Arbitrary<RowFilter> = fc.constantFrom(...FIELDS.map(([f]) => f)).chain((field) =>
  fc.oneof(
    fc
      .record({ op: fc.constantFrom('$eq', '$ne', '$gt', '$gte', '$lt', '$lte'), v: rawOperand(field) })
      .map(({ op, v }) =>
        KIND[field] === 'BOOLEAN'
          ? { [field]: { [op === '$ne' ? '$ne' : '$eq']: v } }
          : { [field]: { [op]: v } },
      ),
    fc
      .record({
        op: fc.constantFrom('$in', '$nin'),
        v: fc.array(rawOperand(field), { minLength: 1, maxLength: 3 }),
      })
      .map(({ op, v }) => ({ [field]: { [op]: v } })),
  ),
);
const rowFilter: fc.Arbitrary<RowFilter | null> = fc.option(
  fc.oneof(
    rowCondition,
    fc.tuple(rowCondition, rowCondition).map(([a, b]) => ({ $or: [a, b] })),
  ),
  { nil: null },
);

const ALL_NAMES = FIELDS.flatMap(([f, kind]) =>
  (['RAW', 'HASH', 'GENERALIZE'] as Transform[])
    .filter((t) => !(kind === 'BOOLEAN' && t === 'GENERALIZE'))
    .map((t) => releasedName(f, t)),
);

interface Scenario {
  grants: Record<string, Transform | null>;
  rowFilter: RowFilter | null;
  purposes: string[];
  state: 'ACTIVE' | 'PENDING' | 'EXPIRED' | 'REVOKED' | 'PROPOSED';
  query: {
    purpose: string;
    fields: string[];
    whereName: string | null;
    whereOp: string;
    orderBy: { field: string; direction: 'ASC' | 'DESC' } | null;
    first: number;
  };
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  grants: fc.record(Object.fromEntries(FIELDS.map(([f, k]) => [f, transformFor(k)]))),
  rowFilter,
  purposes: fc.subarray(PURPOSES, { minLength: 1 }),
  state: fc.constantFrom('ACTIVE', 'ACTIVE', 'ACTIVE', 'ACTIVE', 'PENDING', 'EXPIRED', 'REVOKED', 'PROPOSED'),
  query: fc.record({
    purpose: fc.constantFrom(...PURPOSES),
    fields: fc.subarray(ALL_NAMES, { minLength: 1, maxLength: 5 }),
    whereName: fc.option(fc.constantFrom(...ALL_NAMES), { nil: null }),
    whereOp: fc.constantFrom('eq', 'neq', 'gt', 'lte', 'in', 'nin', 'isNull', 'not-eq'),
    orderBy: fc.option(
      fc.record({
        field: fc.constantFrom(...ALL_NAMES),
        direction: fc.constantFrom<('ASC' | 'DESC')[]>('ASC', 'DESC'),
      }),
      { nil: null },
    ),
    first: fc.integer({ min: 0, max: 40 }),
  }),
});

// --- the test --------------------------------------------------------------------------------

describe('data plane against a reference model (property-based)', () => {
  let broker: TestBroker;
  let cbo: { id: string };
  let research: { id: string };
  let cboSteward: { apiKey: string };
  let researchSteward: { apiKey: string };
  let analyst: { apiKey: string };
  let dataset: { id: string };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'dp_property' });
    cbo = await broker.createAgency('Provider');
    research = await broker.createAgency('Recipient');
    cboSteward = await broker.createUser({ agencyId: cbo.id, role: 'STEWARD' });
    researchSteward = await broker.createUser({ agencyId: research.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: research.id, role: 'ANALYST' });
    for (const code of PURPOSES) {
      await broker.gqlOk(
        broker.operatorKey,
        `mutation { definePurpose(input: { code: "${code}", description: "d" }) { code } }`,
      );
    }
    dataset = await broker.registerDataset(cboSteward.apiKey, {
      slug: 'probe_records',
      title: 'Probe',
      keyField: 'id',
      fields: [
        { name: 'id', type: 'STRING', classification: 'NON_SENSITIVE' },
        ...FIELDS.map(([name, type]) => ({ name, type, classification: 'SENSITIVE' })),
      ],
    });
    await broker.gqlOk(
      cboSteward.apiKey,
      `mutation($id: ID!, $r: [JSONObject!]!) { ingestRecords(datasetId: $id, records: $r) { inserted } }`,
      { id: dataset.id, r: ROWS },
    );
  });
  afterAll(() => broker.close());

  it('releases exactly what the model allows, for every agreement and query', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        const granted = Object.entries(sc.grants).filter(([, t]) => t !== null) as [string, Transform][];
        fc.pre(granted.length > 0);
        const window =
          sc.state === 'PENDING'
            ? { validFrom: '2090-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' }
            : sc.state === 'EXPIRED'
              ? { validFrom: '2001-01-01T00:00:00Z', validUntil: '2002-01-01T00:00:00Z' }
              : { validFrom: '2020-01-01T00:00:00Z', validUntil: '2099-01-01T00:00:00Z' };
        const { proposeAgreement } = await broker.gqlOk(
          cboSteward.apiKey,
          `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { id } }`,
          {
            input: withOversightText({
              title: 'Property',
              providerAgencyId: cbo.id,
              recipientAgencyId: research.id,
              purposes: sc.purposes,
              ...window,
              grants: [
                {
                  datasetId: dataset.id,
                  fields: granted.map(([name, transform]) => ({ name, transform })),
                  rowFilter: sc.rowFilter,
                },
              ],
            }),
          },
        );
        const id = proposeAgreement.id as string;
        if (sc.state !== 'PROPOSED') {
          await broker.gqlOk(
            researchSteward.apiKey,
            `mutation($id: ID!) { approveAgreement(id: $id, version: 1) { id } }`,
            { id },
          );
          // Sensitive fields released other than as HASH need the oversight board's approval too.
          const [{ in_force_version: inForce }] = await broker.query<{ in_force_version: number | null }>(
            `SELECT in_force_version FROM agreement WHERE id = $1`,
            [id],
          );
          if (inForce === null) await broker.oversightApprove(id, 1);
        }
        if (sc.state === 'REVOKED') {
          await broker.gqlOk(
            cboSteward.apiKey,
            `mutation($id: ID!) { revokeAgreement(id: $id, reason: "r") { id } }`,
            { id },
          );
        }
        const [{ hmac_key: key }] = await broker.query<{ hmac_key: Buffer }>(
          `SELECT hmac_key FROM agreement_secret WHERE agreement_id = $1`,
          [id],
        );

        try {
          // The model's released rows.
          const released = new Map(granted.map(([f, t]) => [releasedName(f, t), [f, t] as const]));
          const visible = ROWS.filter((r) => !sc.rowFilter || evalRowFilter(sc.rowFilter, r) === true).map(
            (r) =>
              Object.fromEntries(
                [...released].map(([name, [f, t]]) => [name, releasedValue(f, t, r[f], key)]),
              ),
          );

          // A where filter on a released (or not) name, with an operand taken from released values.
          const q = sc.query;
          let where: Where | null = null;
          if (q.whereName) {
            const sample =
              visible.map((n) => n[q.whereName!]).find((v) => v !== null && v !== undefined) ?? null;
            const isBool = q.whereName === 'b';
            const operand: Value = sample ?? fallbackOperand(q.whereName);
            const op = isBool && !['eq', 'isNull', 'not-eq'].includes(q.whereOp) ? 'eq' : q.whereOp;
            where =
              op === 'isNull'
                ? { [q.whereName]: { isNull: true } }
                : op === 'not-eq'
                  ? { not: { [q.whereName]: { eq: operand } } }
                  : op === 'in' || op === 'nin'
                    ? { [q.whereName]: { [op]: [operand] } }
                    : { [q.whereName]: { [op]: operand } };
          }
          const names = [
            ...q.fields,
            ...(q.whereName ? [q.whereName] : []),
            ...(q.orderBy ? [q.orderBy.field] : []),
          ];
          const allowed =
            sc.state === 'ACTIVE' && sc.purposes.includes(q.purpose) && names.every((n) => released.has(n));

          const res = await broker.gql(
            analyst.apiKey,
            `query($where: ProbeRecordsWhere, $orderBy: [ProbeRecordsOrderBy!], $first: Int) {
               probe_records(purpose: ${q.purpose}, where: $where, orderBy: $orderBy, first: $first) { nodes { ${q.fields.join(' ')} } } }`,
            { where, orderBy: q.orderBy ? [q.orderBy] : null, first: q.first },
            '/data/graphql',
          );
          if (!allowed) {
            expect(res.data).toBeNull();
            if (res.errors?.[0].extensions?.code !== 'FORBIDDEN') throw new Error(JSON.stringify(res.errors));
            return;
          }
          expect(res.errors).toBeUndefined();
          const expectedNodes = visible
            .filter((n) => !where || evalWhere(where, n) === true)
            .map((n) => Object.fromEntries(q.fields.map((f) => [f, n[f]])));
          const got = res.data!.probe_records.nodes as Row[];
          expect(got.length).toBe(Math.min(q.first, expectedNodes.length));
          // Every returned node is one the model releases (as a multiset).
          const pool = expectedNodes.map((n) => JSON.stringify(n));
          for (const node of got) {
            const at = pool.indexOf(JSON.stringify(node));
            expect(at).toBeGreaterThanOrEqual(0);
            pool.splice(at, 1);
          }
          if (q.orderBy && q.fields.includes(q.orderBy.field)) {
            const f = q.orderBy.field;
            const rank = (v: Value) => (v === null ? (q.orderBy!.direction === 'ASC' ? 1 : -1) : 0);
            for (let k = 1; k < got.length; k++) {
              const [a, b] = [got[k - 1][f], got[k][f]];
              if (rank(a) !== rank(b)) expect(rank(a) <= rank(b)).toBe(true);
              else if (a !== null && b !== null)
                expect(q.orderBy.direction === 'ASC' ? a <= b : a >= b).toBe(true);
            }
          }
        } finally {
          if (
            sc.state === 'ACTIVE' ||
            sc.state === 'PENDING' ||
            sc.state === 'EXPIRED' ||
            sc.state === 'PROPOSED'
          ) {
            await broker.gqlOk(
              cboSteward.apiKey,
              `mutation($id: ID!) { revokeAgreement(id: $id, reason: "done") { id } }`,
              { id },
            );
          }
        }
      }),
      { numRuns: 120, seed: Number(process.env.FC_SEED ?? 20261122), endOnFailure: true },
    );
  }, 240_000);
});
