import { compileGrant } from './compiled-grant';
import { field, jailBookings, jailBookingsGrant } from './testing/jail-bookings.fixture';
import { whereFieldNames } from './data-where';
import { PolicyError } from './policy-error';
import { type DatasetShape, FieldTransform, GrantAccess, type GrantContent } from './policy.types';

const dataset = jailBookings('ds-1');
const grantContent = (patch: Partial<GrantContent> = {}): GrantContent => jailBookingsGrant('ds-1', patch);

describe('compileGrant', () => {
  it('releases each granted field under its released name and type', () => {
    const grant = compileGrant(grantContent(), dataset);
    expect([...grant.released.values()]).toEqual([
      { name: 'booking_id', source: 'booking_id', transform: 'RAW', type: 'String' },
      { name: 'ssn_hash', source: 'ssn', transform: 'HASH', type: 'String' },
      { name: 'dob_year', source: 'dob', transform: 'GENERALIZE', type: 'Int' },
      { name: 'age_band', source: 'age', transform: 'GENERALIZE', type: 'Int' },
      { name: 'released', source: 'released', transform: 'RAW', type: 'Boolean' },
    ]);
    expect(grant).toMatchObject({ datasetId: 'ds-1', access: 'ROWS', minCellSize: 11, linkage: false });
    expect(grant.rowFilter).toEqual({ charge: { $ne: 'juvenile' } });
    expect(Object.isFrozen(grant)).toBe(true);
  });

  const mismatches: [string, Partial<GrantContent>, DatasetShape?][] = [
    ['another dataset', { datasetId: 'ds-2' }],
    ['a field the dataset lacks', { fields: [{ name: 'gone', transform: FieldTransform.RAW }] }],
    [
      'a field granted twice',
      {
        fields: [
          { name: 'ssn', transform: FieldTransform.RAW },
          { name: 'ssn', transform: FieldTransform.HASH },
        ],
      },
    ],
    ['GENERALIZE of a BOOLEAN', { fields: [{ name: 'released', transform: FieldTransform.GENERALIZE }] }],
    ['an unknown transform', { fields: [{ name: 'ssn', transform: 'ENCRYPT' as FieldTransform }] }],
    ['an unknown access', { access: 'EVERYTHING' as GrantAccess }],
    ['a cell size of 0', { minCellSize: 0 }],
    ['a row filter on a field the dataset lacks', { rowFilter: { gone: 1 } }],
    ['a row filter of the wrong type', { rowFilter: { age: 'old' } }],
    [
      'released names that collide',
      {
        fields: [
          { name: 'ssn', transform: FieldTransform.HASH },
          { name: 'ssn_hash', transform: FieldTransform.RAW },
        ],
      },
      { ...dataset, fields: [...dataset.fields, field('ssn_hash', 'STRING')] },
    ],
  ];
  it.each(mismatches.map(([what, patch, shape]) => [what, patch, shape ?? dataset] as const))(
    'fails closed on %s',
    (_what, patch, shape) => {
      expect(() => compileGrant(grantContent(patch), shape)).toThrow(
        expect.objectContaining({ code: 'FORBIDDEN' }) as Error,
      );
    },
  );
});

describe('whereFieldNames', () => {
  it('collects every name a filter uses, once, at any depth', () => {
    expect(
      whereFieldNames({
        a: { eq: 1 },
        and: [{ b: { isNull: true } }, { or: [{ c: { eq: 'x' } }, { a: { gt: 1 } }] }],
        not: { not: { d: { in: [] } } },
      }).sort(),
    ).toEqual(['a', 'b', 'c', 'd']);
    expect(whereFieldNames(undefined)).toEqual([]);
  });

  it('refuses filters too deep or too large to walk', () => {
    let deep: any = { a: { eq: 1 } };
    for (let i = 0; i < 100; i++) deep = { not: deep };
    expect(() => whereFieldNames(deep)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT' }) as Error);
    const wide = { or: Array.from({ length: 5000 }, () => ({ a: { eq: 1 } })) };
    expect(() => whereFieldNames(wide)).toThrow(PolicyError);
    expect(() => whereFieldNames({ and: 'a' } as any)).toThrow(PolicyError);
  });
});
