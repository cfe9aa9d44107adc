import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { perturbedGroups } from './aggregate-answer';
import {
  CELL_KEY_MODULUS,
  NOISE_BOUND,
  listed,
  perturbation,
  perturbationKey,
  perturbedCount,
} from './cell-key';
import { aggregateIsExact, budgetSpent, checkLinked, checkUnit } from './data-decision';
import { FieldTransform, GrantAccess, type ReleasedField } from './policy.types';

describe('the cell-key perturbation', () => {
  const key = perturbationKey(randomBytes(32));

  it('draws each perturbation with the stated shares, mean zero, within the bound', () => {
    const seen = new Map<number, number>();
    const draws = 64_000;
    for (let i = 0; i < draws; i++) {
      const p = perturbation((i * 2654435761) % CELL_KEY_MODULUS, 11 + (i % 50), key);
      seen.set(p, (seen.get(p) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual([-1, -2, 0, 1, 2]);
    // 8, 64, 112, 64 and 8 of every 256, within five standard deviations.
    for (const [value, share] of [
      [-2, 8],
      [-1, 64],
      [0, 112],
      [1, 64],
      [2, 8],
    ] as const) {
      const p = share / 256;
      expect(Math.abs(seen.get(value)! - draws * p)).toBeLessThan(5 * Math.sqrt(draws * p * (1 - p)));
    }
  });

  it('is a function of the set of record keys and its count: any order, any query, the same count (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: CELL_KEY_MODULUS - 1 }), { minLength: 1, maxLength: 200 }),
        (keys) => {
          const sum = (list: number[]) => list.reduce((a, b) => a + b, 0) % CELL_KEY_MODULUS;
          const shuffled = [...keys].reverse();
          expect(perturbation(sum(keys), keys.length, key)).toBe(
            perturbation(sum(shuffled), keys.length, key),
          );
          expect(perturbation(String(sum(keys)), keys.length, key)).toBe(
            perturbation(sum(keys), keys.length, key),
          );
          expect(Math.abs(perturbation(sum(keys), keys.length, key))).toBeLessThanOrEqual(NOISE_BOUND);
        },
      ),
    );
  });

  it('depends on the count and on the secret, not on the cell key alone', () => {
    // A public table by cell key made the answers of unions of disjoint sets a system with one
    // solution; keyed by a secret, and by the count too, each answer is a draw of its own.
    const byCount = new Set(Array.from({ length: 40 }, (_, n) => perturbation(12345, 11 + n, key)));
    expect(byCount.size).toBeGreaterThan(2);
    const other = perturbationKey(randomBytes(32));
    const differ = Array.from({ length: 200 }, (_, i) => i).filter(
      (i) => perturbation(i * 7919, 20, key) !== perturbation(i * 7919, 20, other),
    );
    expect(differ.length).toBeGreaterThan(50);
    expect(perturbationKey(Buffer.alloc(32, 1))).toEqual(perturbationKey(Buffer.alloc(32, 1)));
  });

  it('never shows a count below the minimum cell size, and stays within the bound (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 50 }),
        (n, ck, m) => {
          fc.pre(n >= m);
          const shown = perturbedCount(n, ck, m, key);
          expect(shown).toBeGreaterThanOrEqual(m);
          expect(Math.abs(shown - n)).toBeLessThanOrEqual(NOISE_BOUND);
        },
      ),
    );
  });

  it('leaves out a group at the minimum whose draw takes it below, so presence is no exact test of it', () => {
    // Of 1,000 groups of exactly the minimum (various cell keys), those drawn -1 or -2 (28%) are left
    // out; one more than the minimum, those drawn -2 (3%); two more, none; one less, all.
    const m = 11;
    const keep = (n: number) =>
      Array.from({ length: 1000 }, (_, i) => (i * 2654435761) % CELL_KEY_MODULUS).filter((ck) =>
        listed(n, ck, m, key),
      ).length;
    expect(keep(m - 1)).toBe(0);
    expect(keep(m)).toBeGreaterThan(650);
    expect(keep(m)).toBeLessThan(790);
    expect(keep(m + 1)).toBeGreaterThan(940);
    expect(keep(m + 1)).toBeLessThan(1000);
    expect(keep(m + 2)).toBe(1000);
    for (let ck = 0; ck < 1000; ck++) {
      const rows = [{ k: '["A"]', n: m, v: m, selected: true, ck: String(ck) }];
      const groups = perturbedGroups({ groupBy: ['offense'], minCellSize: m }, rows, key);
      expect(groups.length).toBe(m + perturbation(ck, m, key) >= m ? 1 : 0);
      if (groups.length) expect(groups[0].count).toBe(m + perturbation(ck, m, key));
    }
  });

  it('leaves out groups below the minimum cell size, keys and all, and sorts the rest (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            fc.constantFrom('A', 'B', 'C', 'D', null),
            fc.integer({ min: 0, max: 40 }),
            fc.integer({ min: 0, max: CELL_KEY_MODULUS - 1 }),
          ),
          {
            selector: ([k]) => k,
          },
        ),
        fc.integer({ min: 1, max: 20 }),
        (cells, m) => {
          const rows = cells.map(([k, n, ck]) => ({
            k: JSON.stringify([k]),
            n,
            v: n,
            selected: true,
            ck: String(ck),
          }));
          const groups = perturbedGroups({ groupBy: ['offense'], minCellSize: m }, rows, key);
          const kept = cells.filter(([, n, ck]) => n >= m && n > 0 && n + perturbation(ck, n, key) >= m);
          expect(groups.map((g) => g.key.offense)).toEqual(
            kept
              .map(([k]) => k)
              .sort((a, b) => (a === null ? 1 : b === null ? -1 : a < b ? -1 : a > b ? 1 : 0)),
          );
          for (const g of groups) {
            const [, n] = cells.find(([k]) => k === g.key.offense)!;
            expect(g.suppressed).toBe(false);
            expect(Math.abs(g.count! - n)).toBeLessThanOrEqual(NOISE_BOUND);
            expect(g.count!).toBeGreaterThanOrEqual(m);
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

  it('refuses with LIMIT past a budget, saying which, without saying where it stands', () => {
    const mine = budgetSpent('ANALYST');
    const shared = budgetSpent('AGREEMENT');
    for (const refused of [mine, shared]) {
      expect(refused).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT' });
      expect(refused.message).not.toMatch(/\d/);
    }
    expect(mine.message).toMatch(/^Your own budget/);
    expect(shared.message).toMatch(/shares among all its analysts/);
  });
});
