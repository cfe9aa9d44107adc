/**
 * The test of `npm run bench:timing` (bench/timing-stats.ts) against reference values of SciPy 1.17:
 * `scipy.stats.mannwhitneyu(x, y, use_continuity=False, method='asymptotic')` (two-sided).
 */
import { mannWhitney, requestsToDistinguish } from '../bench/timing-stats';

describe('mannWhitney (bench:timing)', () => {
  it('gives SciPy’s U and p for samples without ties', () => {
    // R's wilcox.test example (Hollander & Wolfe, depression scores), taken as two samples.
    const x = [1.83, 0.5, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.3];
    const y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
    const r = mannWhitney(x, y);
    expect(r.u).toBe(58);
    expect(r.p).toBeCloseTo(0.12189099149676101, 6);
    expect(r.auc).toBeCloseTo(58 / 81, 12);
    expect(r.medians).toEqual([1.68, 1.06]);
    expect(r.difference).toBeCloseTo(0.62, 12);
    expect(r.z).toBeGreaterThan(0);
  });

  it('corrects the variance for ties as SciPy does', () => {
    const r = mannWhitney([1, 2, 2, 3, 3, 3, 4, 5, 9], [2, 3, 4, 4, 4, 6, 7, 8, 8, 10]);
    expect(r.u).toBe(23);
    expect(r.p).toBeCloseTo(0.0693215053798925, 6);
    expect(r.z).toBeLessThan(0);
    const many = mannWhitney(
      Array.from({ length: 100 }, (_, i) => i % 7),
      Array.from({ length: 120 }, (_, i) => (i * 3) % 11),
    );
    expect(many.u).toBe(3795);
    expect(many.p).toBeCloseTo(2.3976315618111947e-6, 6);
  });

  it('reports a small p for clearly shifted samples, and 1 for identical ones', () => {
    const shifted = mannWhitney(
      Array.from({ length: 100 }, (_, i) => i),
      Array.from({ length: 100 }, (_, i) => i + 30),
    );
    expect(shifted.u).toBe(2450);
    // SciPy: 4.64e-10; the error function's approximation is good to 2e-7 absolute.
    expect(shifted.p).toBeLessThan(1e-6);
    const same = mannWhitney([1, 2, 3, 4], [1, 2, 3, 4]);
    expect(same.u).toBe(8);
    expect(same.auc).toBe(0.5);
    expect(same.p).toBeCloseTo(1, 6);
  });

  it('refuses samples too small to test', () => {
    expect(() => mannWhitney([1], [1, 2])).toThrow('at least two');
  });
});

describe('requestsToDistinguish', () => {
  it('follows Noether’s formula for equal samples at 5% false alarms and 95% power', () => {
    // (1.959964 + 1.644854)² / (6 · 0.1²) = 216.6…
    expect(requestsToDistinguish(0.6)).toBe(217);
    expect(requestsToDistinguish(0.4)).toBe(217);
    expect(requestsToDistinguish(0.51)).toBe(21658);
    expect(requestsToDistinguish(0.5)).toBe(Number.POSITIVE_INFINITY);
  });
});
