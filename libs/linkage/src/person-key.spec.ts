import type { RowFilter } from '@broker/policy';
import { type PopulationShape, populationLinkedSql } from './person-key';

/**
 * A row filter that counts how often it is read: the policy's compiler parses a filter by walking
 * it, and writes it from what it parsed, so a filter read again was parsed again.
 */
function countingFilter(filter: RowFilter): { filter: RowFilter; reads: () => number } {
  let reads = 0;
  const proxy = new Proxy(filter, {
    get: (target, property, receiver) => {
      reads += 1;
      return Reflect.get(target, property, receiver) as unknown;
    },
    ownKeys: (target) => {
      reads += 1;
      return Reflect.ownKeys(target);
    },
  });
  return { filter: proxy, reads: () => reads };
}

describe('populationLinkedSql', () => {
  const shape = {
    slug: 'jail_bookings',
    keyField: 'booking_id',
    fields: [
      { name: 'booking_id', type: 'STRING' },
      { name: 'county', type: 'STRING' },
      { name: 'age', type: 'INTEGER' },
    ],
  } as unknown as PopulationShape;

  it('parses a grant row filter once, not at every request that filters on personKey', () => {
    const { filter, reads } = countingFilter({ county: 'NORTH', age: { $gte: 18 } });
    const first = populationLinkedSql(shape, filter, '$1', '$2');
    expect(reads()).toBeGreaterThan(0);
    const before = reads();
    const again = populationLinkedSql(shape, filter, '$1', '$2');
    expect(reads()).toBe(before);
    expect(again).toBe(first);
    // The filter is written in, with the population's alias, so that its indexes serve it.
    expect(first).toContain(`"pr"."county"`);
    expect(first).toContain(`'NORTH'`);
  });

  it('writes another shape, and a filter of another grant, anew', () => {
    const { filter } = countingFilter({ county: 'NORTH' });
    const north = populationLinkedSql(shape, filter, '$1', '$2');
    const south = populationLinkedSql(shape, { county: 'SOUTH' }, '$1', '$2');
    expect(south).toContain(`'SOUTH'`);
    expect(south).not.toContain(`'NORTH'`);
    const other = populationLinkedSql({ ...shape, slug: 'court_cases' }, filter, '$1', '$2');
    expect(other).toContain('court_cases');
    expect(north).not.toContain('court_cases');
  });

  it('reads every linked record of the run where the grant has no row filter', () => {
    const sql = populationLinkedSql(shape, null, '$1', '$2');
    expect(sql).toContain('lp.run_id = $1 AND lp.dataset_id = $2');
    expect(sql).not.toContain('JOIN');
  });
});
