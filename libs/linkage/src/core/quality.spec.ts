import fc from 'fast-check';
import { pairwiseQuality, taskQuality } from './quality';

describe('pairwise quality', () => {
  it('counts pairs across datasets (link) and within one (dedup) apart', () => {
    // Person 7 has records 0 (dataset 0), 1 (dataset 1), 2 (dataset 1); all put in one cluster, plus
    // record 3 (person 8, dataset 0) wrongly with them.
    const predicted = [1, 1, 1, 1];
    const truth = [7, 7, 7, 8];
    const dataset = [0, 1, 1, 0];
    expect(taskQuality(predicted, truth, dataset, 'link')).toMatchObject({
      predictedPairs: 4,
      truePairs: 2,
      correctPairs: 2,
      precision: 0.5,
      recall: 1,
    });
    expect(taskQuality(predicted, truth, dataset, 'dedup')).toMatchObject({
      predictedPairs: 2,
      truePairs: 1,
      correctPairs: 1,
    });
  });

  it('splits every pair into exactly one of the two tasks', () => {
    const labels = fc.array(fc.tuple(fc.nat(5), fc.nat(5), fc.nat(2)), { maxLength: 40 });
    fc.assert(
      fc.property(labels, (rows) => {
        const [p, t, d] = [0, 1, 2].map((k) => rows.map((r) => r[k]));
        const all = pairwiseQuality(p, t);
        const link = taskQuality(p, t, d, 'link');
        const dedup = taskQuality(p, t, d, 'dedup');
        expect(link.predictedPairs + dedup.predictedPairs).toBe(all.predictedPairs);
        expect(link.truePairs + dedup.truePairs).toBe(all.truePairs);
        expect(link.correctPairs + dedup.correctPairs).toBe(all.correctPairs);
      }),
    );
  });
});
