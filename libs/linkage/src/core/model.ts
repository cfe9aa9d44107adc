/**
 * The Fellegi-Sunter model: for each comparison level, m = P(level | match) and u = P(level |
 * non-match); a pair's match weight is log2 of its prior odds plus Σ log2(m/u) over its levels
 * (missing levels add nothing). u is counted on random record pairs (almost all non-matches), m
 * estimated by expectation-maximisation on blocked pairs with u held fixed, as Splink does. Exact
 * name agreement is adjusted for how common the name is (term frequency): two "Garcia"s are
 * weaker evidence than two "Zúñiga"s.
 */
import { COMPARISONS, LEVELS, RADIX, STRIDE } from './comparisons';

/**
 * How many candidate pairs showed each comparison pattern. Sparse: of the two million patterns of
 * ten comparisons, a run sees a few thousand.
 */
export type PatternCounts = Map<number, number>;

/** Adds `count` pairs of `pattern`. */
export function addPattern(counts: PatternCounts, pattern: number, count = 1): void {
  counts.set(pattern, (counts.get(pattern) ?? 0) + count);
}

/** Adds every count of `from` to `into`. */
export function addPatterns(into: PatternCounts, from: PatternCounts): void {
  for (const [pattern, count] of from) addPattern(into, pattern, count);
}

/** A fitted model, stored with its run (JSON). */
export interface LinkageModel {
  /** m[c][l]: probability of level l of comparison c among matches. */
  m: number[][];
  /** u[c][l]: probability of level l of comparison c among non-matches. */
  u: number[][];
  /** Prior probability that two records drawn at random are one person. */
  lambda: number;
  /** Expected share of candidate pairs that are one person, under the model. */
  candidateMatchShare: number;
  /** Pairs whose match weight is at least this are links. */
  threshold: number;
  emIterations: number;
  /** Candidate pairs EM was fitted on, and random pairs u was counted on. */
  emPairs: number;
  randomPairs: number;
}

/** How common each name and city is: occurrences per folded value among all records of the run. */
export interface TermFrequencies {
  records: number;
  first: Map<string, number>;
  last: Map<string, number>;
  city: Map<string, number>;
}

/** Starting values of m: what a careful clerk's records of one person look like. */
export const M_START: readonly (readonly number[])[] = [
  [0.85, 0.05, 0.04, 0.02, 0.04],
  [0.8, 0.04, 0.05, 0.02, 0.09],
  [0.9, 0.03, 0.04, 0.01, 0.02],
  [0.95, 0.03, 0.02],
  [0.98, 0.02],
  [0.8, 0.05, 0.15],
  [0.9, 0.1],
  [0.9, 0.05, 0.05],
  [0.7, 0.15, 0.15],
  [0.8, 0.05, 0.15],
];

/**
 * m is at least this: a level never seen among the fitted matches (a sex that disagrees) is still
 * possible in a real record, and must not veto a link on its own.
 */
export const M_FLOOR = 1e-3;

/** How many matches the starting values of m count as when the rules' estimates are averaged. */
export const M_PRIOR_MATCHES = 10;

/** Term-frequency adjustments are bounded so a name never outweighs a date of birth. */
export const TF_ADJUSTMENT_LIMIT = 5;

/** log2 with probabilities floored, so an unseen level has a large but finite weight. */
const log2Ratio = (m: number, u: number) => Math.log2(Math.max(m, 1e-9) / Math.max(u, 1e-12));

/** The Bayes-factor weight log2(m/u) of every level of every comparison. */
export function levelWeights(model: Pick<LinkageModel, 'm' | 'u'>): number[][] {
  return COMPARISONS.map((_, c) => model.m[c].map((m, l) => log2Ratio(m, model.u[c][l])));
}

/** The prior weight of a candidate pair: log2 of the odds that it matches. */
export function priorWeight(lambda: number): number {
  const l = Math.min(Math.max(lambda, 1e-9), 1 - 1e-9);
  return Math.log2(l / (1 - l));
}

/** Room per comparison in {@link levelWeightTable}: levels and missing. */
export const LEVEL_SLOTS = 8;

/**
 * Every level's weight in one flat table, `LEVEL_SLOTS` per comparison (c · LEVEL_SLOTS + level),
 * missing levels 0: a pair's match weight is the prior plus one entry per comparison.
 */
export function levelWeightTable(model: Pick<LinkageModel, 'm' | 'u'>): Float64Array {
  const weights = levelWeights(model);
  const table = new Float64Array(COMPARISONS.length * LEVEL_SLOTS);
  for (let c = 0; c < COMPARISONS.length; c++) {
    for (let l = 0; l < LEVELS[c]; l++) table[c * LEVEL_SLOTS + l] = weights[c][l];
  }
  return table;
}

/** The match weight of a pattern without term-frequency adjustment: prior + Σ level weights. */
export function patternWeight(model: LinkageModel, pattern: number): number {
  const weights = levelWeights(model);
  let w = priorWeight(model.lambda);
  for (let c = 0; c < RADIX.length; c++) {
    const level = Math.floor(pattern / STRIDE[c]) % RADIX[c];
    if (level < LEVELS[c]) w += weights[c][level];
  }
  return w;
}

/** The probability that a pair of match weight `w` is one person. */
export function matchProbability(w: number): number {
  return 1 / (1 + Math.pow(2, -w));
}

/** The match weight of a probability: log2 of its odds. */
export function weightOfProbability(p: number): number {
  const q = Math.min(Math.max(p, 1e-12), 1 - 1e-12);
  return Math.log2(q / (1 - q));
}

/**
 * The term-frequency adjustment of exact agreement on a name with `count` occurrences among
 * `records`: log2(u_exact / frequency), bounded by ±{@link TF_ADJUSTMENT_LIMIT}. Positive for rare
 * names, negative for common ones.
 */
export function tfAdjustment(uExact: number, count: number, records: number): number {
  const frequency = Math.max(count, 2) / Math.max(records, 2);
  const adjustment = Math.log2(Math.max(uExact, 1e-12) / frequency);
  return Math.max(-TF_ADJUSTMENT_LIMIT, Math.min(TF_ADJUSTMENT_LIMIT, adjustment));
}

/** Level counts per comparison (missing excluded), as u is counted. */
export type LevelCounts = number[][];

/** Empty level counts. */
export function emptyLevelCounts(): LevelCounts {
  return LEVELS.map((l) => new Array<number>(l).fill(0));
}

/**
 * u from level counts on random pairs, with add-½ smoothing so that a level never seen among
 * random pairs (two equal SSNs) has a small, not zero, probability.
 */
export function uFromCounts(counts: LevelCounts): number[][] {
  return counts.map((levels) => {
    const total = levels.reduce((a, b) => a + b, 0);
    return levels.map((n) => (n + 0.5) / (total + 0.5 * levels.length));
  });
}

/**
 * Expectation-maximisation of m and λ over pattern counts of candidate pairs, with u fixed.
 * Deterministic: same counts, same model. Returns m, λ, the iterations run, and per comparison
 * the expected matches among the pairs on which it was not missing (what its m was learned from).
 */
export function estimateM(
  patternCounts: PatternCounts,
  u: number[][],
  options: { maxIterations?: number; tolerance?: number; lambdaStart?: number } = {},
): { m: number[][]; lambda: number; iterations: number; observedMatches: number[] } {
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? 1e-7;
  const observed: { pattern: number; count: number; levels: number[] }[] = [];
  // In pattern order, so that the sums (and the model) do not depend on the order counts were added.
  for (const p of [...patternCounts.keys()].sort((a, b) => a - b)) {
    const count = patternCounts.get(p)!;
    if (count > 0) {
      observed.push({ pattern: p, count, levels: STRIDE.map((s, c) => Math.floor(p / s) % RADIX[c]) });
    }
  }
  let m = M_START.map((levels) => [...levels]);
  let lambda = options.lambdaStart ?? 0.3;
  let iterations = 0;
  let observedMatches = LEVELS.map(() => 0);
  if (observed.length === 0) return { m, lambda, iterations, observedMatches };
  for (; iterations < maxIterations; iterations++) {
    const expected = emptyLevelCounts();
    let matchMass = 0;
    let total = 0;
    for (const { count, levels } of observed) {
      let pm = lambda;
      let pu = 1 - lambda;
      for (let c = 0; c < levels.length; c++) {
        const l = levels[c];
        if (l >= LEVELS[c]) continue;
        pm *= m[c][l];
        pu *= u[c][l];
      }
      const posterior = pm + pu > 0 ? pm / (pm + pu) : 0;
      const mass = posterior * count;
      matchMass += mass;
      total += count;
      for (let c = 0; c < levels.length; c++) {
        const l = levels[c];
        if (l < LEVELS[c]) expected[c][l] += mass;
      }
    }
    observedMatches = expected.map((levels) => levels.reduce((a, b) => a + b, 0));
    const next = expected.map((levels) => {
      const sum = levels.reduce((a, b) => a + b, 0);
      // A comparison never observed among matches keeps its starting values.
      return sum > 0 ? levels.map((n) => Math.max(n / sum, 1e-6)) : null;
    });
    const nextLambda = total > 0 ? matchMass / total : lambda;
    let change = Math.abs(nextLambda - lambda);
    m = m.map((old, c) => {
      const updated = next[c] ?? old;
      for (let l = 0; l < updated.length; l++) change = Math.max(change, Math.abs(updated[l] - old[l]));
      return updated;
    });
    lambda = nextLambda;
    if (change < tolerance) {
      iterations++;
      break;
    }
  }
  return { m, lambda, iterations, observedMatches };
}

/**
 * m from EM per blocking rule (Splink's approach): each rule's pairs agree on what the rule blocks
 * on, so its EM says nothing about those comparisons (they are masked to missing in its counts),
 * and each comparison's m is the average of the rules that do estimate it, weighted by each rule's
 * expected matches among its pairs that have the comparison (a rule for records without a date of
 * birth says nothing of dates). A rule's estimate of a comparison is left out when its fitted
 * class does not look like matches on it: it agrees exactly no more often than random pairs do,
 * or no more often than it disagrees outright. EM can converge to another split of the pairs
 * (Winkler, 1988), as it does on a rule whose blocks hold almost no matches (the swapped-name
 * rules on the county: a class of pairs that agree on sex and on nothing else).
 */
export function estimateMByRule(
  countsByRule: readonly PatternCounts[],
  blocksOn: readonly (readonly number[])[],
  u: number[][],
): { m: number[][]; iterations: number } {
  const sums = emptyLevelCounts();
  const weights = LEVELS.map(() => 0);
  let iterations = 0;
  countsByRule.forEach((counts, r) => {
    let pairs = 0;
    for (const count of counts.values()) pairs += count;
    if (pairs === 0) return;
    const fitted = estimateM(counts, u);
    iterations = Math.max(iterations, fitted.iterations);
    for (let c = 0; c < LEVELS.length; c++) {
      const matches = fitted.observedMatches[c];
      const m = fitted.m[c];
      if (blocksOn[r].includes(c) || matches <= 0 || m[0] <= u[c][0] || m[0] <= m[m.length - 1]) continue;
      for (let l = 0; l < LEVELS[c]; l++) sums[c][l] += fitted.m[c][l] * matches;
      weights[c] += matches;
    }
  });
  // The starting values count as M_PRIOR_MATCHES matches seen (a Dirichlet prior, as u's add-½):
  // nothing beside thousands of matches, but a comparison that a small run's rules estimate from
  // a few dozen matches is not told that a typo never happens because none of them had one.
  const m = sums.map((levels, c) =>
    levels.map((x, l) =>
      Math.max((x + M_PRIOR_MATCHES * M_START[c][l]) / (weights[c] + M_PRIOR_MATCHES), M_FLOOR),
    ),
  );
  return { m, iterations };
}

/**
 * The prior λ (probability that two random records are one person) consistent with the model:
 * the expected matches among the candidate pairs (scaled from the fitted sample to all partitions
 * by `scale`) over all pairs, as a fixed point, since each pair's match probability depends on λ.
 * Returns λ and the expected share of candidate pairs that match.
 */
export function estimatePrior(
  candidateCounts: PatternCounts,
  m: number[][],
  u: number[][],
  scale: number,
  records: number,
): { lambda: number; candidateMatchShare: number } {
  const allPairs = (records * (records - 1)) / 2;
  // The Bayes factor of each observed pattern, once.
  const observed: { count: number; factor: number }[] = [];
  let candidates = 0;
  for (const p of [...candidateCounts.keys()].sort((a, b) => a - b)) {
    const count = candidateCounts.get(p)!;
    if (count === 0) continue;
    candidates += count;
    let factor = 1;
    for (let c = 0; c < RADIX.length; c++) {
      const level = Math.floor(p / STRIDE[c]) % RADIX[c];
      if (level < LEVELS[c]) factor *= Math.max(m[c][level], 1e-9) / Math.max(u[c][level], 1e-12);
    }
    observed.push({ count, factor });
  }
  if (candidates === 0 || allPairs <= 0) return { lambda: 1e-9, candidateMatchShare: 0 };
  let lambda = Math.min(0.5, (0.5 * candidates * scale) / allPairs);
  let matches = 0;
  for (let iteration = 0; iteration < 100; iteration++) {
    const odds = lambda / (1 - lambda);
    matches = 0;
    for (const { count, factor } of observed) matches += (count * odds * factor) / (1 + odds * factor);
    const next = Math.min(0.5, Math.max(1e-12, (matches * scale) / allPairs));
    const done = Math.abs(next - lambda) <= lambda * 1e-9;
    lambda = next;
    if (done) break;
  }
  return { lambda, candidateMatchShare: matches / candidates };
}
