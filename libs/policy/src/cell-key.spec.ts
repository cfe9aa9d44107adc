import fc from 'fast-check';
import { perturbedGroups } from './aggregate-answer';
import { CELL_KEY_MODULUS, NOISE_BOUND, PERTURBATION_TABLE, perturbation, perturbedCount } from './cell-key';
import { aggregateIsExact, checkBudget, checkLinked, checkUnit } from './data-decision';
import { FieldTransform, GrantAccess, type ReleasedField } from './policy.types';

describe('the cell-key perturbation', () => {
  it('has a table of the stated shares, mean zero, within the bound', () => {
    expect(PERTURBATION_TABLE).toHaveLength(CELL_KEY_MODULUS);
    const share = (v: number) => PERTURBATION_TABLE.filter((p) => p === v).length;
    expect([share(-2), share(-1), share(0), share(1), share(2)]).toEqual([8, 64, 112, 64, 8]);
    expect(PERTURBATION_TABLE.reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('is a function of the set of record keys: any order, any query, the same count (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 200 }), (keys) => {
        const sum = (list: number[]) => list.reduce((a, b) => a + b, 0) % CELL_KEY_MODULUS;
        const shuffled = [...keys].reverse();
        expect(perturbation(sum(keys))).toBe(perturbation(sum(shuffled)));
        expect(Math.abs(perturbation(sum(keys)))).toBeLessThanOrEqual(NOISE_BOUND);
      }),
    );
  });

  it('never shows a count below the minimum cell size, and stays within the bound (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 50 }),
        (n, ck, m) => {
          fc.pre(n >= m);
          const shown = perturbedCount(n, ck, m);
          expect(shown).toBeGreaterThanOrEqual(m);
          expect(Math.abs(shown - n)).toBeLessThanOrEqual(NOISE_BOUND);
        },
      ),
    );
  });

  it('leaves out groups below the minimum cell size, keys and all, and sorts the rest (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            fc.constantFrom('A', 'B', 'C', 'D', null),
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: 255 }),
          ),
          {
            selector: ([k]) => k,
          },
        ),
        fc.integer({ min: 1, max: 20 }),
        (cells, m) => {
          const rows = cells.map(([k, n, ck]) => ({ k: JSON.stringify([k]), n, v: n, selected: true, ck }));
          const groups = perturbedGroups({ groupBy: ['offense'], minCellSize: m }, rows);
          const listed = cells.filter(([, n]) => n >= m && n > 0);
          expect(groups.map((g) => g.key.offense)).toEqual(
            listed
              .map(([k]) => k)
              .sort((a, b) => (a === null ? 1 : b === null ? -1 : a < b ? -1 : a > b ? 1 : 0)),
          );
          for (const g of groups) {
            const [, n] = cells.find(([k]) => k === g.key.offense)!;
            expect(g.suppressed).toBe(false);
            expect(Math.abs(g.count! - n)).toBeLessThanOrEqual(NOISE_BOUND);
          }
        },
      ),
    );
  });
});

describe('the decisions of linked counts, PERSONS, exactness and the budget', () => {
  const released = (name: string, type: ReleasedField['type'], transform = FieldTransform.RAW) =>
    [name, { name, type, transform, source: name }] as [string, ReleasedField];
  const grant = (linkage: boolean, access = GrantAccess.AGGREGATE_ONLY) => ({
    linkage,
    access,
    released: new Map([
      released('completed_on', 'Date'),
      released('booked_on', 'DateTime'),
      released('dob_year', 'Int', FieldTransform.GENERALIZE),
      released('program', 'String'),
    ]),
  });

  it('needs linkage on both sides, and a window of dates released as is, both ends or none', () => {
    expect(checkLinked(grant(true), grant(false), {})).toMatchObject({
      reason: 'FIELD_NOT_RELEASED',
      field: 'personKey',
    });
    expect(checkLinked(grant(true), grant(true), {})).toBeNull();
    expect(
      checkLinked(grant(true), grant(true), {
        on: 'booked_on',
        after: 'completed_on',
        minDays: 1,
        maxDays: 365,
      }),
    ).toBeNull();
    expect(checkLinked(grant(true), grant(true), { on: 'booked_on' })).toMatchObject({ reason: 'INVALID' });
    expect(checkLinked(grant(true), grant(true), { on: 'program', after: 'completed_on' })).toMatchObject({
      reason: 'INVALID',
    });
    expect(checkLinked(grant(true), grant(true), { on: 'dob_year', after: 'completed_on' })).toMatchObject({
      reason: 'INVALID',
    });
    expect(checkLinked(grant(true), grant(true), { maxDays: 3 })).toMatchObject({ reason: 'INVALID' });
    expect(
      checkLinked(grant(true), grant(true), {
        on: 'booked_on',
        after: 'completed_on',
        minDays: 5,
        maxDays: 4,
      }),
    ).toMatchObject({ reason: 'INVALID' });
    expect(
      checkLinked(grant(true), grant(true), { on: 'booked_on', after: 'completed_on', minDays: 1e9 }),
    ).toMatchObject({ reason: 'INVALID' });
  });

  it('counts persons only under a grant with linkage', () => {
    expect(checkUnit(grant(false), 'PERSONS')).toMatchObject({ reason: 'FIELD_NOT_RELEASED' });
    expect(checkUnit(grant(false), 'RECORDS')).toBeNull();
    expect(checkUnit(grant(true), 'PERSONS')).toBeNull();
  });

  it('is exact only where every dataset counted is readable as rows under the chosen agreements', () => {
    const rows = grant(true, GrantAccess.ROWS);
    const rowsNoLinkage = grant(false, GrantAccess.ROWS);
    expect(aggregateIsExact(rows, 'RECORDS', null)).toBe(true);
    expect(aggregateIsExact(rowsNoLinkage, 'RECORDS', null)).toBe(true);
    expect(aggregateIsExact(rowsNoLinkage, 'PERSONS', null)).toBe(false);
    expect(aggregateIsExact(grant(true), 'RECORDS', null)).toBe(false);
    expect(aggregateIsExact(rows, 'RECORDS', rows)).toBe(true);
    expect(aggregateIsExact(rows, 'PERSONS', grant(true))).toBe(false);
  });

  it('refuses with LIMIT past the budget, without saying where it stands', () => {
    expect(checkBudget(10, 10)).toBeNull();
    const refused = checkBudget(11, 10)!;
    expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
    expect(refused.message).not.toMatch(/\d/);
  });
});
