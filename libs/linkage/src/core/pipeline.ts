/**
 * The stages of a linkage run as pure functions, shared by the BullMQ jobs (which pass their
 * inputs and outputs through PostgreSQL) and by {@link linkInMemory} (tests, benchmark baseline):
 *
 * 1. {@link normaliseChunk}: a chunk of a dataset's records → normalised records, and the same
 *    records split by partition of each blocking scheme;
 * 2. {@link fitModel}: term frequencies over all records, u from random pairs of a sample, m by EM
 *    on the candidate pairs of the first partitions;
 * 3. {@link scorePartition}: every candidate pair of a partition weighed; links kept;
 * 4. {@link clusterLinks}: links → clusters, without chaining.
 */
import { EM_RULES, SCHEMES, partitionOf, schemeKeys } from './blocking';
import { type Clusters, clusterRecords } from './clustering';
import {
  type LevelCounts,
  type LinkageModel,
  type PatternCounts,
  type TermFrequencies,
  addPatterns,
  emptyLevelCounts,
  estimateMByRule,
  estimatePrior,
  uFromCounts,
} from './model';
import { emptyUnparsedCounts } from './identity-fields';
import { type IdentityValues, type UnparsedCounts, normaliseIdentity, unparsedRoles } from './normalise';
import { RecordBatch } from './record-batch';
import { HISTOGRAM_MAX, HISTOGRAM_MIN, type Links, PartitionScorer, type ScoreResult } from './scorer';

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { ceil, floor, imul, max, min } = Math;

/** Bits of a record id below the chunk number: a chunk holds at most 2^20 records. */
export const CHUNK_BITS = 20;
export const MAX_CHUNK_RECORDS = 2 ** CHUNK_BITS;
/** Chunks per run: the chunk number takes the upper 12 bits of a 32-bit record id. */
export const MAX_CHUNKS = 2 ** 12;

/** The record id of record `index` of chunk `chunk`. */
export function recordIdOf(chunk: number, index: number): number {
  return chunk * MAX_CHUNK_RECORDS + index;
}

/** Tuning of a run. */
export interface LinkageSettings {
  /** Match weight threshold of a link. */
  threshold: number;
  /** Random record pairs that u is counted on. */
  randomPairs: number;
  /** Records sampled (about) for the random pairs u is counted on. */
  sampleRecords: number;
  /** EM is fitted on the candidate pairs of the first partitions holding at least this many records. */
  emRecords: number;
}

export const DEFAULT_SETTINGS: Readonly<LinkageSettings> = {
  threshold: 4,
  randomPairs: 1_000_000,
  sampleRecords: 20_000,
  emRecords: 60_000,
};

/**
 * A chunk normalised: its records in order, per partition the records that go there, and per
 * identity role the values present but not understood.
 */
export interface NormalisedChunk {
  records: RecordBatch;
  parts: Map<number, RecordBatch>;
  unparsed: UnparsedCounts;
}

/**
 * Stage 1. Normalises a chunk of one dataset's records and routes each record to the partition of
 * each blocking scheme it has a key for (one copy per partition, with the schemes as a mask).
 */
export function normaliseChunk(
  chunk: number,
  dataset: number,
  rows: readonly IdentityValues[],
  partitions: number,
): NormalisedChunk {
  if (rows.length > MAX_CHUNK_RECORDS) throw new Error(`a chunk holds at most ${MAX_CHUNK_RECORDS} records`);
  if (chunk >= MAX_CHUNKS) throw new Error(`a run has at most ${MAX_CHUNKS} chunks`);
  const builder = RecordBatch.builder(rows.length);
  const unparsed = emptyUnparsedCounts();
  for (let i = 0; i < rows.length; i++) {
    const identity = normaliseIdentity(rows[i]);
    unparsedRoles(rows[i], identity, unparsed);
    builder.push(recordIdOf(chunk, i), dataset, 0, identity);
  }
  const records = builder.build();
  return { records, parts: partitionRecords(records, partitions), unparsed };
}

/** Splits records by partition of each scheme (see blocking.ts). */
export function partitionRecords(records: RecordBatch, partitions: number): Map<number, RecordBatch> {
  const builders = new Map<number, ReturnType<typeof RecordBatch.builder>>();
  const add = (p: number, i: number, mask: number) => {
    let builder = builders.get(p);
    if (!builder) builders.set(p, (builder = RecordBatch.builder(1024)));
    builder.pushFrom(records, i, mask);
  };
  const targets = new Int32Array(SCHEMES.length);
  for (let i = 0; i < records.size; i++) {
    const schemeKeysOf = schemeKeys(records, i);
    for (let s = 0; s < SCHEMES.length; s++) {
      const key = schemeKeysOf[s];
      targets[s] = key === key ? partitionOf(key, partitions) : -1;
    }
    // One copy per distinct partition, carrying every scheme that sent it there.
    for (let s = 0; s < SCHEMES.length; s++) {
      const p = targets[s];
      if (p < 0) continue;
      let seenBefore = false;
      for (let t = 0; t < s; t++) if (targets[t] === p) seenBefore = true;
      if (seenBefore) continue;
      let mask = 0;
      for (let t = s; t < SCHEMES.length; t++) if (targets[t] === p) mask |= SCHEMES[t];
      add(p, i, mask);
    }
  }
  const parts = new Map<number, RecordBatch>();
  for (const [p, builder] of [...builders].sort((x, y) => x[0] - y[0])) parts.set(p, builder.build());
  return parts;
}

/** Occurrences of each given name, surname and city among the records. */
export function termFrequencies(batches: readonly RecordBatch[]): TermFrequencies {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const city = new Map<string, number>();
  let records = 0;
  for (const batch of batches) {
    records += batch.size;
    // Counted by dictionary id, then added up by value once per distinct value of the batch.
    const firstCounts = new Uint32Array(batch.names.length);
    const lastCounts = new Uint32Array(batch.names.length);
    const cityCounts = new Uint32Array(batch.names.length);
    for (let i = 0; i < batch.size; i++) {
      firstCounts[batch.firstName[i]]++;
      lastCounts[batch.lastName[i]]++;
      cityCounts[batch.city[i]]++;
    }
    for (let id = 1; id < batch.names.length; id++) {
      const name = batch.names[id];
      if (firstCounts[id]) first.set(name, (first.get(name) ?? 0) + firstCounts[id]);
      if (lastCounts[id]) last.set(name, (last.get(name) ?? 0) + lastCounts[id]);
      if (cityCounts[id]) city.set(name, (city.get(name) ?? 0) + cityCounts[id]);
    }
  }
  return { records, first, last, city };
}

/** Term frequencies as JSON (names seen once are left out: they count as once when missing). */
export function termFrequenciesToJson(tf: TermFrequencies): string {
  const pairs = (m: Map<string, number>) =>
    [...m].filter(([, n]) => n > 1).sort((x, y) => (x[0] < y[0] ? -1 : 1));
  return JSON.stringify({
    records: tf.records,
    first: pairs(tf.first),
    last: pairs(tf.last),
    city: pairs(tf.city),
  });
}

/** Reads what {@link termFrequenciesToJson} wrote. */
export function termFrequenciesFromJson(json: string): TermFrequencies {
  const parsed = JSON.parse(json) as {
    records: number;
    first: [string, number][];
    last: [string, number][];
    city?: [string, number][];
  };
  return {
    records: parsed.records,
    first: new Map(parsed.first),
    last: new Map(parsed.last),
    city: new Map(parsed.city ?? []),
  };
}

/** A deterministic sample of records: those whose id hashes to 0 modulo `every`. */
export function sampleRecords(batches: readonly RecordBatch[], every: number): RecordBatch {
  const builder = RecordBatch.builder(1024);
  for (const batch of batches) {
    for (let i = 0; i < batch.size; i++) {
      if (imul(batch.recordId[i], 0x9e3779b1) >>> 0 < 4294967296 / every) builder.pushFrom(batch, i, 0);
    }
  }
  return builder.build();
}

/** Counts comparison levels over `pairs` random pairs of the sample (a seeded generator: deterministic). */
export function countRandomPairLevels(sample: RecordBatch, pairs: number, seed = 0x2545f491): LevelCounts {
  const counts = emptyLevelCounts();
  const n = sample.size;
  if (n < 2) return counts;
  const scorer = new PartitionScorer(sample);
  const levels = scorer.levels;
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let k = 0; k < pairs; k++) {
    const i = floor(random() * n);
    let j = floor(random() * (n - 1));
    if (j >= i) j++;
    scorer.pattern(i, j);
    for (let c = 0; c < counts.length; c++) {
      if (levels[c] < counts[c].length) counts[c][levels[c]]++;
    }
  }
  return counts;
}

/**
 * Stage 2. Fits the model: u on random pairs of a sample of all records, m by EM per blocking rule
 * on the pairs of `emParts` (the first partitions), and the prior λ from the candidate pairs of
 * those partitions scaled to all `partitions`.
 */
export function fitModel(
  records: readonly RecordBatch[],
  emParts: readonly RecordBatch[],
  partitions: number,
  settings: LinkageSettings = DEFAULT_SETTINGS,
): { model: LinkageModel; tf: TermFrequencies } {
  const tf = termFrequencies(records);
  const total = records.reduce((n, batch) => n + batch.size, 0);
  const sample = sampleRecords(records, max(1, floor(total / settings.sampleRecords)));
  const u = uFromCounts(countRandomPairLevels(sample, settings.randomPairs));
  const byRule = EM_RULES.map((): PatternCounts => new Map());
  const candidates: PatternCounts = new Map();
  let emPairs = 0;
  for (const part of emParts) {
    const scorer = new PartitionScorer(part);
    scorer.countPatternsByRule().forEach((counts, r) => addPatterns(byRule[r], counts));
    const deduped = scorer.countPatterns();
    addPatterns(candidates, deduped.counts);
    emPairs += deduped.pairs;
  }
  const { m, iterations } = estimateMByRule(
    byRule,
    EM_RULES.map((r) => r.blocksOn),
    u,
  );
  const scale = emParts.length ? partitions / emParts.length : 1;
  const { lambda, candidateMatchShare } = estimatePrior(candidates, m, u, scale, tf.records);
  return {
    model: {
      m,
      u,
      lambda,
      candidateMatchShare,
      threshold: settings.threshold,
      emIterations: iterations,
      emPairs,
      randomPairs: settings.randomPairs,
    },
    tf,
  };
}

/** Stage 3. Scores a partition's candidate pairs. */
export function scorePartition(part: RecordBatch, model: LinkageModel, tf: TermFrequencies): ScoreResult {
  return new PartitionScorer(part).useModel(model, tf).score();
}

/**
 * Stage 4. Clusters all records of a run by the links of all partitions, keeping `apart` the pairs
 * (record ids) a reviewer decided are not one person. `chunks[c]` is chunk c's records (record ids
 * `c << 20 | i`); labels are dense indices in chunk order.
 */
export function clusterLinks(
  chunks: readonly RecordBatch[],
  links: readonly Links[],
  apart: readonly (readonly [number, number])[] = [],
): Clusters & { offsets: number[] } {
  const offsets: number[] = [];
  let total = 0;
  for (const chunk of chunks) {
    offsets.push(total);
    total += chunk.size;
  }
  const all = RecordBatch.concat(chunks.length ? [...chunks] : [RecordBatch.builder(0).build()]);
  const dense = (recordId: number) =>
    offsets[floor(recordId / MAX_CHUNK_RECORDS)] + (recordId % MAX_CHUNK_RECORDS);
  const size = links.reduce((n, l) => n + l.size, 0);
  const a = new Uint32Array(size);
  const b = new Uint32Array(size);
  const weight = new Float32Array(size);
  let k = 0;
  for (const l of links) {
    for (let i = 0; i < l.size; i++, k++) {
      a[k] = dense(l.a[i]);
      b[k] = dense(l.b[i]);
      weight[k] = l.weight[i];
    }
  }
  const clusters = clusterRecords(
    { size: total, ssn: all.ssn, year: all.year, month: all.month, day: all.day },
    { size, a, b, weight },
    undefined,
    apart.map(([x, y]) => [dense(x), dense(y)] as const),
  );
  return { ...clusters, offsets };
}

/** Per-run statistics of {@link linkInMemory}. */
export interface InMemoryResult {
  /** Per dataset, per record, its cluster label (a dense record index). */
  labels: Uint32Array[];
  model: LinkageModel;
  records: number;
  candidatePairs: number;
  links: number;
  persons: number;
  histogram: Float64Array;
  skippedBlocks: number;
}

/**
 * The whole pipeline in one process, on records in memory: the same stages the jobs run, with
 * the same chunking into record ids. For tests and the benchmark's baseline.
 */
export function linkInMemory(
  datasets: readonly (readonly IdentityValues[])[],
  options: { chunkRecords?: number; partitions?: number; settings?: Partial<LinkageSettings> } = {},
): InMemoryResult {
  const chunkRecords = options.chunkRecords ?? 50_000;
  const total = datasets.reduce((n, d) => n + d.length, 0);
  const partitions = options.partitions ?? partitionsFor(total);
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  const chunks: RecordBatch[] = [];
  const parts = new Map<number, RecordBatch[]>();
  datasets.forEach((rows, d) => {
    for (let start = 0; start < rows.length; start += chunkRecords) {
      const normalised = normaliseChunk(
        chunks.length,
        d,
        rows.slice(start, start + chunkRecords),
        partitions,
      );
      chunks.push(normalised.records);
      for (const [p, batch] of normalised.parts) {
        const list = parts.get(p) ?? [];
        list.push(batch);
        parts.set(p, list);
      }
    }
  });
  const partBatches = [...Array(partitions).keys()].map((p) =>
    RecordBatch.concat(parts.get(p) ?? [RecordBatch.builder(0).build()]),
  );
  const { model, tf } = fitModel(chunks, emPartitions(partBatches, settings.emRecords), partitions, settings);
  const histogram = new Float64Array(HISTOGRAM_MAX - HISTOGRAM_MIN);
  let candidatePairs = 0;
  let skippedBlocks = 0;
  const links: Links[] = [];
  for (const part of partBatches) {
    const result = scorePartition(part, model, tf);
    candidatePairs += result.pairs;
    skippedBlocks += result.skippedBlocks;
    for (let i = 0; i < result.histogram.length; i++) histogram[i] += result.histogram[i];
    links.push(result.links);
  }
  const clusters = clusterLinks(chunks, links);
  const labels: Uint32Array[] = [];
  let offset = 0;
  for (const rows of datasets) {
    labels.push(clusters.label.slice(offset, offset + rows.length));
    offset += rows.length;
  }
  return {
    labels,
    model,
    records: total,
    candidatePairs,
    links: links.reduce((n, l) => n + l.size, 0),
    persons: clusters.count,
    histogram,
    skippedBlocks,
  };
}

/** The first partitions holding at least `records` records: EM's sample of candidate pairs. */
export function emPartitions(parts: readonly RecordBatch[], records: number): RecordBatch[] {
  const chosen: RecordBatch[] = [];
  let held = 0;
  for (const part of parts) {
    if (held >= records) break;
    chosen.push(part);
    held += part.size;
  }
  return chosen;
}

/**
 * How many partitions a run of `records` records is scored in: about 50,000 record copies each (a
 * record has one to three). Small enough that a partition's columns, keys and block tables stay in
 * a core's cache while its pairs are compared (a million records scored 1.8 times faster per core
 * in 50 partitions than in 10), large enough that its fixed costs stay small beside its pairs.
 */
export function partitionsFor(records: number): number {
  return max(2, min(1024, ceil((records * 2.5) / 50_000)));
}
