/**
 * Pairwise quality of a clustering against the truth: of the record pairs put in one cluster, the
 * share that are one person (precision), and of the record pairs that are one person, the share
 * put in one cluster (recall). Counted from cluster sizes, without listing pairs.
 */

/** Precision, recall and F1 of pairs, with the pair counts behind them. */
export interface PairwiseQuality {
  precision: number;
  recall: number;
  f1: number;
  predictedPairs: number;
  truePairs: number;
  correctPairs: number;
}

const pairsOf = (n: number) => (n * (n - 1)) / 2;

/** Pairwise quality of `predicted` cluster labels against `truth` labels, record by record. */
export function pairwiseQuality(predicted: ArrayLike<number>, truth: ArrayLike<number>): PairwiseQuality {
  if (predicted.length !== truth.length) throw new Error('predicted and truth differ in length');
  const clusters = new Map<number, number>();
  const people = new Map<number, number>();
  const both = new Map<number, number>();
  for (let i = 0; i < predicted.length; i++) {
    const c = predicted[i];
    const t = truth[i];
    clusters.set(c, (clusters.get(c) ?? 0) + 1);
    people.set(t, (people.get(t) ?? 0) + 1);
    const key = c * 4294967296 + t;
    both.set(key, (both.get(key) ?? 0) + 1);
  }
  let predictedPairs = 0;
  for (const n of clusters.values()) predictedPairs += pairsOf(n);
  let truePairs = 0;
  for (const n of people.values()) truePairs += pairsOf(n);
  let correctPairs = 0;
  for (const n of both.values()) correctPairs += pairsOf(n);
  const precision = predictedPairs ? correctPairs / predictedPairs : 1;
  const recall = truePairs ? correctPairs / truePairs : 1;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, predictedPairs, truePairs, correctPairs };
}

/**
 * Pairwise quality among the records of one group (a name culture, a sex): the records for which
 * `inGroup` holds, the others left out, so a group's pairs are judged among themselves.
 */
export function groupQuality(
  predicted: ArrayLike<number>,
  truth: ArrayLike<number>,
  inGroup: (record: number) => boolean,
): PairwiseQuality {
  const p: number[] = [];
  const t: number[] = [];
  for (let i = 0; i < truth.length; i++) {
    if (!inGroup(i)) continue;
    p.push(predicted[i]);
    t.push(truth[i]);
  }
  return pairwiseQuality(p, t);
}

/**
 * Pairwise quality of the pairs of records in two different datasets (`task: 'link'`), or in the
 * same dataset (`'dedup'`): linkage across registries and deduplication within one are judged
 * apart, as the record-linkage literature reports them. Counted from sizes per (cluster, dataset).
 */
export function taskQuality(
  predicted: ArrayLike<number>,
  truth: ArrayLike<number>,
  dataset: ArrayLike<number>,
  task: 'link' | 'dedup',
): PairwiseQuality {
  if (predicted.length !== truth.length || dataset.length !== truth.length)
    throw new Error('predicted, truth and dataset differ in length');
  /** Pairs among the records counted under each label, split into within and across datasets. */
  const pairs = (labels: ArrayLike<number>, second?: ArrayLike<number>) => {
    const all = new Map<string, number>();
    const byDataset = new Map<string, number>();
    for (let i = 0; i < labels.length; i++) {
      const label = second ? `${labels[i]}:${second[i]}` : `${labels[i]}`;
      all.set(label, (all.get(label) ?? 0) + 1);
      const key = `${label}|${dataset[i]}`;
      byDataset.set(key, (byDataset.get(key) ?? 0) + 1);
    }
    let within = 0;
    for (const n of byDataset.values()) within += pairsOf(n);
    let total = 0;
    for (const n of all.values()) total += pairsOf(n);
    return task === 'dedup' ? within : total - within;
  };
  const predictedPairs = pairs(predicted);
  const truePairs = pairs(truth);
  const correctPairs = pairs(predicted, truth);
  const precision = predictedPairs ? correctPairs / predictedPairs : 1;
  const recall = truePairs ? correctPairs / truePairs : 1;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, predictedPairs, truePairs, correctPairs };
}
