import { SeededRandom, WeightedTable, hashSeed, mix32 } from './seeded-random';

describe('SeededRandom', () => {
  it('repeats a sequence for the same seed and stream, and differs otherwise', () => {
    const draw = (seed: number | string, stream = 0) => {
      const random = new SeededRandom(seed, stream);
      return Array.from({ length: 8 }, () => random.nextUint32());
    };
    expect(draw(1)).toEqual(draw(1));
    expect(draw('county')).toEqual(draw('county'));
    expect(draw(1)).not.toEqual(draw(2));
    expect(draw(1, 0)).not.toEqual(draw(1, 1));
    // A number and its text are different seeds.
    expect(draw(1)).not.toEqual(draw('1'));
    expect(hashSeed(1)).not.toBe(hashSeed('1'));
  });

  it('draws uniformly enough', () => {
    const random = new SeededRandom(99);
    const buckets = new Array<number>(10).fill(0);
    const n = 100_000;
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const x = random.next();
      if (!(x >= 0 && x < 1)) outside++;
      else buckets[Math.floor(x * 10)]++;
      sum += random.int(1, 6);
    }
    expect(outside).toBe(0);
    for (const count of buckets) expect(Math.abs(count - n / 10)).toBeLessThan(600);
    expect(sum / n).toBeCloseTo(3.5, 1);
    let hits = 0;
    for (let i = 0; i < n; i++) if (random.chance(0.2)) hits++;
    expect(hits / n).toBeCloseTo(0.2, 2);
    expect(new SeededRandom(1).chance(0)).toBe(false);
    let poisson = 0;
    for (let i = 0; i < 20_000; i++) poisson += random.poisson(1.5);
    expect(poisson / 20_000).toBeCloseTo(1.5, 1);
  });

  it('mixes 32-bit numbers without collisions', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200_000; i++) seen.add(mix32(i));
    expect(seen.size).toBe(200_000);
    expect(mix32(0xffffffff)).toBeLessThan(2 ** 32);
  });

  it('draws weighted items in proportion', () => {
    const table = new WeightedTable(['a', 'b', 'c'], [1, 2, 7]);
    const random = new SeededRandom('weights');
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 50_000; i++) counts[table.draw(random)]++;
    expect(counts.a / 50_000).toBeCloseTo(0.1, 1);
    expect(counts.c / 50_000).toBeCloseTo(0.7, 1);
    const zipf = WeightedTable.zipf(['first', 'second', 'last']);
    let first = 0;
    for (let i = 0; i < 10_000; i++) if (zipf.draw(random) === 'first') first++;
    expect(first).toBeGreaterThan(3333);
    expect(() => new WeightedTable([], [])).toThrow();
  });
});
