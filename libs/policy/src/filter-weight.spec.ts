import fc from 'fast-check';
import { compileGrant } from './compiled-grant';
import {
  MAX_PERTURBED_FILTER_CONDITIONS,
  MAX_PERTURBED_FILTER_HASHES,
  checkPerturbedFilter,
} from './data-decision';
import { MAX_WHERE_DEPTH, type WhereNode, filterWeight, parseDataWhere } from './data-where';
import { type DataWhere, FieldTransform, GrantAccess } from './policy.types';
import { SqlParams } from './sql-builder';
import { whereSql } from './sql-compiler';
import { jailBookings, jailBookingsGrant } from './testing/jail-bookings.fixture';

const dataset = jailBookings('0b7f6c1e-2a1f-4c7e-9d3a-5f1b2c3d4e5f');
/** Counts only: the SSN, the person id and the charge as HASH, the rest RAW or generalised. */
const grant = compileGrant(
  jailBookingsGrant(dataset.id, {
    access: GrantAccess.AGGREGATE_ONLY,
    rowFilter: null,
    fields: [
      { name: 'booking_id', transform: FieldTransform.RAW },
      { name: 'person_id', transform: FieldTransform.HASH },
      { name: 'ssn', transform: FieldTransform.HASH },
      { name: 'charge', transform: FieldTransform.HASH },
      { name: 'dob', transform: FieldTransform.GENERALIZE },
      { name: 'age', transform: FieldTransform.GENERALIZE },
      { name: 'released', transform: FieldTransform.RAW },
    ],
  }),
  dataset,
);
const HEX = '0'.repeat(64);

/** The comparisons a parsed filter holds: what PostgreSQL may evaluate on each record. */
function leaves(node: WhereNode): number {
  if (node.kind === 'and' || node.kind === 'or') return node.children.reduce((n, c) => n + leaves(c), 0);
  if (node.kind === 'not') return leaves(node.child);
  return 1;
}
/** The HMACs of records in a filter's compiled SQL. */
const hmacsIn = (where: DataWhere) =>
  (whereSql(where, grant, dataset, 't', new SqlParams(), '$1::bytea').match(/\bhmac\(/g) ?? []).length;

/** Filters on every released name, with every operator and nesting, lists of any length. */
const filterArb: fc.Arbitrary<DataWhere> = fc
  .letrec<{ where: DataWhere }>((tie) => {
    const list = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { maxLength: 40 });
    const field = fc.oneof(
      fc
        .record(
          { eq: fc.constant(HEX), neq: fc.constant(HEX), gt: fc.constant(HEX), in: list(fc.constant(HEX)) },
          { requiredKeys: [] },
        )
        .map((f) => ({ ssn_hash: f })),
      fc
        .record(
          { in: list(fc.constant(HEX)), nin: list(fc.constant(HEX)), isNull: fc.boolean() },
          { requiredKeys: [] },
        )
        .map((f) => ({ charge_hash: f })),
      fc.record({ eq: fc.constant(HEX), nin: list(fc.constant(HEX)) }, { requiredKeys: [] }).map((f) => ({
        person_id_hash: f,
      })),
      fc
        .record({ eq: fc.string(), in: list(fc.string()), lt: fc.string() }, { requiredKeys: [] })
        .map((f) => ({
          booking_id: f,
        })),
      fc
        .record(
          { gte: fc.integer({ min: 1900, max: 2100 }), in: list(fc.integer({ min: 1900, max: 2100 })) },
          {
            requiredKeys: [],
          },
        )
        .map((f) => ({ dob_year: f })),
      fc
        .record({ eq: fc.boolean(), isNull: fc.boolean() }, { requiredKeys: [] })
        .map((f) => ({ released: f })),
    );
    return {
      where: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        field,
        fc.tuple(field, field).map(([a, b]) => ({ ...a, ...b })),
        fc.array(tie('where'), { maxLength: 4 }).map((parts) => ({ and: parts })),
        fc.array(tie('where'), { maxLength: 4 }).map((parts) => ({ or: parts })),
        tie('where').map((part) => ({ not: part })),
        fc.tuple(field, tie('where')).map(([a, part]) => ({ ...a, or: [part] })),
      ),
    };
  })
  .where.filter((w) => {
    try {
      parseDataWhere(w, grant);
      return true;
    } catch {
      return false;
    }
  });

describe('filterWeight: the weight of a perturbed count’s filter is what its SQL evaluates', () => {
  it('counts each comparison the filter compiles to, and each HMAC of its SQL (fast-check)', () => {
    fc.assert(
      fc.property(filterArb, (where) => {
        const weight = filterWeight(where, grant);
        expect(weight).toEqual({ conditions: leaves(parseDataWhere(where, grant)), hashed: hmacsIn(where) });
      }),
      { numRuns: 500 },
    );
  });

  it('counts an `in` list as one condition, one HMAC on a HASH name, whatever its length', () => {
    const values = Array.from({ length: 5000 }, () => HEX);
    expect(filterWeight({ ssn_hash: { in: values } }, grant)).toEqual({ conditions: 1, hashed: 1 });
    expect(hmacsIn({ ssn_hash: { in: values } })).toBe(1);
    expect(filterWeight({ booking_id: { nin: ['a', 'b', 'c'] } }, grant)).toEqual({
      conditions: 1,
      hashed: 0,
    });
  });

  it('walks exactly as deep as a filter may nest: deeper is refused before any weight matters', () => {
    const nest = (depth: number): DataWhere =>
      depth === 1 ? { ssn_hash: { eq: HEX } } : { not: nest(depth - 1) };
    expect(filterWeight(nest(MAX_WHERE_DEPTH), grant)).toEqual({ conditions: 1, hashed: 1 });
    expect(() => parseDataWhere(nest(MAX_WHERE_DEPTH + 1), grant)).toThrow('A filter nests too deep');
  });

  it('bounds the HMACs a record costs, the HASH names a count is grouped by included', () => {
    const two = { ssn_hash: { eq: HEX }, charge_hash: { eq: HEX } };
    expect(checkPerturbedFilter(two, grant)).toBeNull();
    expect(checkPerturbedFilter(two, grant, ['dob_year', 'released'])).toBeNull();
    expect(checkPerturbedFilter({ ssn_hash: { eq: HEX } }, grant, ['charge_hash'])).toBeNull();
    expect(checkPerturbedFilter(null, grant, ['ssn_hash', 'charge_hash'])).toBeNull();
    const heavy = { code: 'BAD_USER_INPUT', reason: 'LIMIT' };
    // Grouped by HASH names, each record the filter keeps is hashed once more for each of them.
    expect(checkPerturbedFilter(two, grant, ['person_id_hash'])).toMatchObject(heavy);
    expect(checkPerturbedFilter(null, grant, ['ssn_hash', 'charge_hash', 'person_id_hash'])).toMatchObject(
      heavy,
    );
    expect(
      checkPerturbedFilter({ ssn_hash: { in: [HEX] } }, grant, ['ssn_hash', 'charge_hash']),
    ).toMatchObject(heavy);
    expect(MAX_PERTURBED_FILTER_HASHES).toBe(2);
    const conditions = (n: number) => ({
      or: Array.from({ length: n }, () => ({ booking_id: { eq: 'x' } })),
    });
    expect(checkPerturbedFilter(conditions(MAX_PERTURBED_FILTER_CONDITIONS), grant, ['ssn_hash'])).toBeNull();
    expect(checkPerturbedFilter(conditions(MAX_PERTURBED_FILTER_CONDITIONS + 1), grant)).toMatchObject(heavy);
  });
});
