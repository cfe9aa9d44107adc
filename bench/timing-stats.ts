/**
 * The statistics of `npm run bench:timing`: whether two samples of response times come from one
 * distribution (a two-sided Mann–Whitney U test), and how many requests an attacker would need to
 * tell them apart. The rank sum and the error function are simple-statistics'; the rest is the
 * textbook normal approximation, checked against SciPy in test/timing-stats.spec.ts.
 */
import { errorFunction, median, wilcoxonRankSum } from 'simple-statistics';

/** The comparison of two samples of times (ms). */
export interface Comparison {
  /** Sample sizes. */
  n: [number, number];
  /** Medians of each sample. */
  medians: [number, number];
  /** Median of the first less median of the second. */
  difference: number;
  /** Mann–Whitney U of the first sample: pairs (x, y) with x > y, ties counted a half. */
  u: number;
  /**
   * U / (n1·n2): the chance that a time of the first sample exceeds one of the second (ties a half),
   * 0.5 when the two cannot be told apart. An attacker's guess from a single pair of requests is
   * right with about max(auc, 1 − auc).
   */
  auc: number;
  /** The standardised U (normal approximation, variance corrected for ties, no continuity correction). */
  z: number;
  /** Two-sided p-value of z. */
  p: number;
}

/**
 * A two-sided Mann–Whitney U test of `x` against `y` by the normal approximation, with the variance
 * corrected for ties (SciPy's `mannwhitneyu(x, y, use_continuity=False, method='asymptotic')`).
 */
export function mannWhitney(x: readonly number[], y: readonly number[]): Comparison {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 < 2 || n2 < 2) throw new Error('each sample needs at least two values');
  const total = n1 + n2;
  const u = wilcoxonRankSum(x, y) - (n1 * (n1 + 1)) / 2;
  // Σ(t³ − t) over the groups of tied values of the pooled sample.
  const pooled = [...x, ...y].sort((a, b) => a - b);
  let ties = 0;
  for (let i = 0; i < total;) {
    let j = i + 1;
    while (j < total && pooled[j] === pooled[i]) j++;
    const t = j - i;
    ties += t * t * t - t;
    i = j;
  }
  const variance = ((n1 * n2) / 12) * (total + 1 - ties / (total * (total - 1)));
  const z = variance > 0 ? (u - (n1 * n2) / 2) / Math.sqrt(variance) : 0;
  // P(|Z| ≥ |z|) = erfc(|z|/√2); the approximation's absolute error is below 2e-7.
  const p = Math.min(1, Math.max(0, 1 - errorFunction(Math.abs(z) / Math.SQRT2)));
  const medians: [number, number] = [median([...x]), median([...y])];
  return { n: [n1, n2], medians, difference: medians[0] - medians[1], u, auc: u / (n1 * n2), z, p };
}

/**
 * About how many requests of each kind an attacker needs to tell two such samples apart by this
 * test, with a 5% chance of a false alarm and 95% power (Noether's formula for equal samples:
 * (z₀.₉₇₅ + z₀.₉₅)² / (6 (auc − ½)²)). Infinite when auc is ½.
 */
export function requestsToDistinguish(auc: number): number {
  const effect = auc - 0.5;
  if (effect === 0) return Number.POSITIVE_INFINITY;
  return Math.ceil((1.959964 + 1.644854) ** 2 / (6 * effect * effect));
}
