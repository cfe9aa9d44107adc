import {
  COMPARISONS,
  DOB,
  FIRST,
  LAST,
  LEVELS,
  SEX,
  SSN,
  ZIP,
  decodePattern,
  encodePattern,
} from './comparisons';
import {
  LEVEL_SLOTS,
  M_START,
  type PatternCounts,
  TF_ADJUSTMENT_LIMIT,
  addPattern,
  estimateM,
  estimateMByRule,
  estimatePrior,
  levelWeightTable,
  matchProbability,
  patternWeight,
  priorWeight,
  tfAdjustment,
  weightOfProbability,
} from './model';

/** A seeded generator (mulberry32), so the synthetic pairs are the same on every run. */
function random(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TRUE_M = [
  [0.8, 0.08, 0.05, 0.03, 0.04],
  [0.85, 0.03, 0.05, 0.02, 0.05],
  [0.92, 0.03, 0.03, 0.01, 0.01],
  [0.95, 0.03, 0.02],
  [0.98, 0.02],
  [0.8, 0.05, 0.15],
  [0.9, 0.1],
  [0.85, 0.05, 0.1],
  [0.7, 0.2, 0.1],
  [0.75, 0.1, 0.15],
];
const TRUE_U = [
  [0.01, 0.003, 0.002, 0.005, 0.98],
  [0.01, 0.001, 0.002, 0.007, 0.98],
  [0.001, 0.0005, 0.0005, 0.02, 0.978],
  [0.0001, 0.0009, 0.999],
  [0.55, 0.45],
  [0.1, 0.001, 0.899],
  [0.1, 0.9],
  [0.00001, 0.0001, 0.99989],
  [0.0001, 0.001, 0.9989],
  [0.2, 0.01, 0.79],
];

/** Pattern counts of `pairs` synthetic pairs, a share `lambda` of them matches. */
function synthetic(pairs: number, lambda: number, seed = 1) {
  const next = random(seed);
  const draw = (probabilities: number[]) => {
    let x = next();
    for (let l = 0; l < probabilities.length; l++) {
      x -= probabilities[l];
      if (x < 0) return l;
    }
    return probabilities.length - 1;
  };
  const counts: PatternCounts = new Map();
  let matches = 0;
  for (let k = 0; k < pairs; k++) {
    const match = next() < lambda;
    if (match) matches++;
    const levels = COMPARISONS.map((_, c) => draw((match ? TRUE_M : TRUE_U)[c]));
    addPattern(counts, encodePattern(levels));
  }
  return { counts, matches };
}

describe('the Fellegi-Sunter model', () => {
  it('recovers m and λ by EM, u fixed', () => {
    const { counts, matches } = synthetic(200_000, 0.3);
    const { m, lambda, iterations } = estimateM(counts, TRUE_U);
    expect(iterations).toBeGreaterThan(1);
    expect(lambda).toBeCloseTo(matches / 200_000, 2);
    m.forEach((levels, c) => levels.forEach((p, l) => expect(Math.abs(p - TRUE_M[c][l])).toBeLessThan(0.01)));
  });

  it('learns each comparison only from the blocking rules that do not block on it', () => {
    const { counts } = synthetic(100_000, 0.4, 2);
    // A rule blocking on the given name: its counts have the given name missing.
    const masked: PatternCounts = new Map();
    counts.forEach((n, p) => {
      const levels = decodePattern(p);
      levels[FIRST] = LEVELS[FIRST];
      addPattern(masked, encodePattern(levels), n);
    });
    const onlyMasked = estimateMByRule([masked], [[FIRST]], TRUE_U);
    expect(onlyMasked.m[FIRST]).toEqual([...M_START[FIRST]]);
    expect(Math.abs(onlyMasked.m[1][0] - TRUE_M[1][0])).toBeLessThan(0.02);
    const both = estimateMByRule([masked, counts], [[FIRST], []], TRUE_U);
    expect(Math.abs(both.m[FIRST][0] - TRUE_M[FIRST][0])).toBeLessThan(0.02);
  });

  it('takes no estimate from a rule whose pairs never show the comparison, or whose EM class is not the matches', () => {
    const { counts } = synthetic(100_000, 0.4, 4);
    const dobMasked = (source: PatternCounts, keep: (levels: number[]) => boolean) => {
      const out: PatternCounts = new Map();
      source.forEach((n, p) => {
        const levels = decodePattern(p);
        if (keep(levels)) addPattern(out, encodePattern(levels), n);
      });
      return out;
    };
    // A rule for records without a date of birth: its pairs never have one.
    const undated = dobMasked(synthetic(20_000, 0.3, 5).counts, (levels) => {
      levels[DOB] = LEVELS[DOB];
      return true;
    });
    // A rule whose blocks hold no matches, only non-matches that agree on sex (EM still finds a
    // class: pairs that agree on sex and on little else).
    const noMatches: PatternCounts = new Map();
    synthetic(20_000, 0, 6).counts.forEach((n, p) => {
      const levels = decodePattern(p);
      levels[SEX] = 0;
      levels[FIRST] = LEVELS[FIRST];
      levels[LAST] = LEVELS[LAST];
      addPattern(noMatches, encodePattern(levels), n);
    });
    const { m } = estimateMByRule([counts, undated, noMatches], [[], [FIRST, LAST], [FIRST, LAST]], TRUE_U);
    for (const c of [DOB, SSN, ZIP]) expect(Math.abs(m[c][0] - TRUE_M[c][0])).toBeLessThan(0.02);
    expect(Math.abs(m[DOB][LEVELS[DOB] - 1] - TRUE_M[DOB][LEVELS[DOB] - 1])).toBeLessThan(0.01);
  });

  it('counts the starting values of m as a few matches, so that a handful of matches does not rule out a level', () => {
    // Twenty matches, every one with an exact date of birth: a typo in a date is not thereby impossible.
    const few: PatternCounts = new Map();
    addPattern(few, encodePattern(LEVELS.map((l, c) => (c === DOB ? 0 : l))), 20);
    const { m } = estimateMByRule([few], [[]], TRUE_U);
    expect(m[DOB][2]).toBeGreaterThan(0.01);
    expect(m[DOB][0]).toBeGreaterThan(0.9);
  });

  it('sets the prior from the expected matches among all pairs of records', () => {
    const { counts, matches } = synthetic(50_000, 0.5, 3);
    const records = 20_000;
    const { lambda, candidateMatchShare } = estimatePrior(counts, TRUE_M, TRUE_U, 1, records);
    expect(candidateMatchShare).toBeCloseTo(matches / 50_000, 1);
    expect(lambda).toBeCloseTo(matches / ((records * (records - 1)) / 2), 6);
    // Pairs scored in a fifth of the partitions stand for five times as many matches.
    expect(estimatePrior(counts, TRUE_M, TRUE_U, 5, records).lambda).toBeGreaterThan(lambda * 4.5);
  });

  it('weighs a pattern as the prior plus log2(m/u) of its levels, missing levels adding nothing', () => {
    const model = {
      m: TRUE_M,
      u: TRUE_U,
      lambda: 0.001,
      candidateMatchShare: 0.5,
      threshold: 0,
      emIterations: 0,
      emPairs: 0,
      randomPairs: 0,
    };
    const missing = encodePattern(LEVELS.map((l) => l));
    expect(patternWeight(model, missing)).toBeCloseTo(priorWeight(0.001), 10);
    const exact = encodePattern(LEVELS.map(() => 0));
    const expected = priorWeight(0.001) + TRUE_M.reduce((w, m, c) => w + Math.log2(m[0] / TRUE_U[c][0]), 0);
    expect(patternWeight(model, exact)).toBeCloseTo(expected, 10);
    const table = levelWeightTable(model);
    expect(table[FIRST * LEVEL_SLOTS + LEVELS[FIRST]]).toBe(0);
    expect(table[FIRST * LEVEL_SLOTS]).toBeCloseTo(Math.log2(TRUE_M[FIRST][0] / TRUE_U[FIRST][0]), 10);
  });

  it('turns a match weight into a probability and back', () => {
    expect(matchProbability(0)).toBe(0.5);
    expect(matchProbability(4)).toBeCloseTo(16 / 17, 12);
    expect(weightOfProbability(16 / 17)).toBeCloseTo(4, 10);
    expect(weightOfProbability(matchProbability(-7.25))).toBeCloseTo(-7.25, 10);
  });

  it('adjusts exact name agreement for how common the name is, within bounds', () => {
    const u = 0.01;
    expect(tfAdjustment(u, 5_000, 100_000)).toBeLessThan(0);
    expect(tfAdjustment(u, 20, 100_000)).toBeGreaterThan(0);
    expect(tfAdjustment(u, 1_000, 100_000)).toBeCloseTo(0, 10);
    expect(tfAdjustment(u, 2, 10_000_000)).toBe(TF_ADJUSTMENT_LIMIT);
    expect(tfAdjustment(u, 90_000, 100_000)).toBe(-TF_ADJUSTMENT_LIMIT);
  });
});
