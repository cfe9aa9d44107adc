import { BLOCKING_RULES } from './core/blocking';
import { IDENTITY_ROLES, emptyUnparsedCounts } from './core/identity-fields';
import { HISTOGRAM_MIN } from './core/scorer';
import { type ScoreStats, headline, summariseRun } from './linkage-run.stats';

const score = (over: Partial<ScoreStats>): ScoreStats => ({
  pairs: 0,
  links: 0,
  histogram: {},
  skippedBlocks: 0,
  pairsByRule: [],
  records: 0,
  cpuMs: 0,
  ...over,
});

describe("a finished run's statistics", () => {
  it('sums its units, fills the histogram between the lowest and highest bins, and counts unparsed values', () => {
    const { stats, histogram } = summariseRun(
      [{ records: 10, unparsed: { ...emptyUnparsedCounts(), SSN: 2 } }, { records: 5 }],
      [
        score({
          pairs: 7,
          links: 2,
          histogram: { 58: 3, 65: 4 },
          skippedBlocks: 1,
          pairsByRule: [7],
          cpuMs: 9,
        }),
        score({ pairs: 3, links: 1, histogram: { 65: 3 }, pairsByRule: [1, 2], cpuMs: 1 }),
      ],
      { persons: 12, refused: 1 },
    );
    expect(headline(stats)).toEqual({ records: 15, candidatePairs: 10, links: 3, persons: 12 });
    expect(stats).toMatchObject({ refusedMerges: 1, skippedBlocks: 1, scoreCpuMs: 10 });
    expect((stats.unparsed as Record<string, number>).SSN).toBe(2);
    expect(Object.keys(stats.unparsed as object).sort()).toEqual([...IDENTITY_ROLES].sort());
    const rules = stats.pairsByRule as { rule: string; pairs: number }[];
    expect(rules.map((r) => r.rule)).toEqual(BLOCKING_RULES.map((r) => r.name));
    expect(rules.slice(0, 2).map((r) => r.pairs)).toEqual([8, 2]);
    expect(rules.reduce((n, r) => n + r.pairs, 0)).toBe(stats.candidatePairs);
    // Bins 58..65 (weights −2 to 6), without gaps; every pair in exactly one.
    expect(histogram.map((b) => b.lower)).toEqual([-2, -1, 0, 1, 2, 3, 4, 5]);
    expect(histogram[0]).toEqual({ lower: 58 + HISTOGRAM_MIN, upper: 59 + HISTOGRAM_MIN, pairs: 3 });
    expect(histogram[7].pairs).toBe(7);
    expect(histogram.reduce((n, b) => n + b.pairs, 0)).toBe(10);
  });

  it('is empty but complete for a run without records', () => {
    const { stats, histogram } = summariseRun([], [], undefined);
    expect(headline(stats)).toEqual({ records: 0, candidatePairs: 0, links: 0, persons: 0 });
    expect(histogram).toEqual([]);
  });
});
