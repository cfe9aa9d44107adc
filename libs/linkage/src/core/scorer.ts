/**
 * Candidate pairs and their match weights. For one partition of records: every blocking rule of
 * the partition's schemes forms blocks of equal keys, every pair in a block not claimed by an
 * earlier rule is compared, and its comparison pattern is either counted (to fit the model) or
 * weighed (to link). The hot loop touches typed arrays only; names are interned integers with a
 * cache of their similarity levels.
 */
import { BLOCKING_RULES } from './blocking';
import { FIRST, LAST, LEVELS, PATTERNS, RADIX, STRIDE, agreeLevel, dobLevel, ssnLevel } from './comparisons';
import { type LinkageModel, type TermFrequencies, patternWeights, tfAdjustment } from './model';
import { KeySlots } from './hash-tables';
import { PreparedBatch } from './prepared-batch';
import type { RecordBatch } from './record-batch';

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { floor } = Math;

/** Blocks larger than this are not compared (their pairs would swamp a partition); they are counted. */
export const MAX_BLOCK = 2_000;

/** Match weights are counted per unit-wide bin over this range; weights outside fall in the end bins. */
export const HISTOGRAM_MIN = -60;
export const HISTOGRAM_MAX = 60;
const HISTOGRAM_BINS = HISTOGRAM_MAX - HISTOGRAM_MIN;

/** The links of a partition: pairs of record ids (smaller first) with their weights. */
export interface Links {
  size: number;
  a: Uint32Array;
  b: Uint32Array;
  weight: Float32Array;
}

/** What scoring a partition found. */
export interface ScoreResult {
  /** Candidate pairs compared. */
  pairs: number;
  /** Pairs at or above the threshold. */
  links: Links;
  /** Pairs per unit bin of match weight, from {@link HISTOGRAM_MIN}. */
  histogram: Float64Array;
  /** Pairs per blocking rule. */
  pairsByRule: number[];
  /** Blocks skipped for exceeding {@link MAX_BLOCK}. */
  skippedBlocks: number;
}

const S_FIRST = STRIDE[0];
const S_LAST = STRIDE[1];
const S_DOB = STRIDE[2];
const S_SSN = STRIDE[3];
const S_SEX = STRIDE[4];
const S_ZIP = STRIDE[5];
const S_MIDDLE = STRIDE[6];

/**
 * Compares pairs of one partition. `run` drives it to the end; `steps` yields every few hundred
 * thousand pairs so that an asynchronous caller can let its event loop breathe (BullMQ renews
 * job locks on timers).
 */
export class PartitionScorer {
  readonly prepared: PreparedBatch;
  private readonly batch: RecordBatch;
  private weights: Float64Array | null = null;
  private tfFirst: Float64Array | null = null;
  private tfLast: Float64Array | null = null;
  private threshold = Infinity;

  constructor(batch: RecordBatch | PreparedBatch) {
    this.prepared = batch instanceof PreparedBatch ? batch : new PreparedBatch(batch);
    this.batch = this.prepared.batch;
  }

  /** The comparison pattern of records i and j. */
  pattern(i: number, j: number): number {
    const b = this.batch;
    const p = this.prepared;
    return (
      p.firstLevel(i, j) * S_FIRST +
      p.lastLevel(i, j) * S_LAST +
      dobLevel(b.year[i], b.month[i], b.day[i], b.year[j], b.month[j], b.day[j]) * S_DOB +
      ssnLevel(b.ssn[i], b.ssn[j]) * S_SSN +
      agreeLevel(b.sex[i], b.sex[j]) * S_SEX +
      agreeLevel(b.zip[i], b.zip[j]) * S_ZIP +
      agreeLevel(b.middleInitial[i], b.middleInitial[j]) * S_MIDDLE
    );
  }

  /** Sets the model that {@link score} weighs pairs with. */
  useModel(model: LinkageModel, tf: TermFrequencies): this {
    this.weights = patternWeights(model);
    this.threshold = model.threshold;
    const names = this.prepared.names;
    // Adjustments per interned name id; names that are not a given name (or surname) get 0.
    const first = new Float64Array(names.length);
    const last = new Float64Array(names.length);
    const uFirst = model.u[FIRST][0];
    const uLast = model.u[LAST][0];
    for (let id = 0; id < names.length; id++) {
      const name = names[id];
      const f = tf.first.get(name);
      if (f !== undefined) first[id] = tfAdjustment(uFirst, f, tf.records);
      const l = tf.last.get(name);
      if (l !== undefined) last[id] = tfAdjustment(uLast, l, tf.records);
    }
    this.tfFirst = first;
    this.tfLast = last;
    return this;
  }

  /** The match weight of records i and j under the model. */
  weight(i: number, j: number): number {
    const pattern = this.pattern(i, j);
    let w = this.weights![pattern];
    const firstLevelIndex = floor(pattern / S_FIRST);
    if (firstLevelIndex === 0) w += this.tfFirst![this.prepared.firstId[i]];
    if (floor(pattern / S_LAST) % 6 === 0) w += this.tfLast![this.prepared.lastId[i]];
    return w;
  }

  /** Counts the comparison pattern of every candidate pair (each pair once). */
  countPatterns(): { counts: Float64Array; pairs: number } {
    const counts = new Float64Array(PATTERNS);
    let pairs = 0;
    const visit = (i: number, j: number) => {
      counts[this.pattern(i, j)]++;
      pairs++;
    };
    drain(this.pairs(visit, true));
    return { counts, pairs };
  }

  /**
   * Per blocking rule, the patterns of *all* pairs its blocks hold (not only those it claims), with
   * the comparisons the rule blocks on set to missing: what EM learns m from (see model.ts).
   */
  countPatternsByRule(): Float64Array[] {
    const counts = BLOCKING_RULES.map(() => new Float64Array(PATTERNS));
    const masks = BLOCKING_RULES.map((rule) => rule.blocksOn);
    const visit = (i: number, j: number, r: number) => {
      let pattern = this.pattern(i, j);
      for (const c of masks[r]) {
        const level = floor(pattern / STRIDE[c]) % RADIX[c];
        pattern += (LEVELS[c] - level) * STRIDE[c];
      }
      counts[r][pattern]++;
    };
    drain(this.pairs(visit, false));
    return counts;
  }

  /** Scores every candidate pair, synchronously. */
  score(): ScoreResult {
    const steps = this.scoreSteps();
    let next = steps.next();
    while (!next.done) next = steps.next();
    return next.value;
  }

  /** Scores every candidate pair, yielding now and then; the generator's return value is the result. */
  *scoreSteps(): Generator<void, ScoreResult, undefined> {
    if (!this.weights) throw new Error('useModel() must be called before scoring');
    const weights = this.weights;
    const tfFirst = this.tfFirst!;
    const tfLast = this.tfLast!;
    const threshold = this.threshold;
    const firstId = this.prepared.firstId;
    const lastId = this.prepared.lastId;
    const recordId = this.batch.recordId;
    const histogram = new Float64Array(HISTOGRAM_BINS);
    let links = growLinks(null, 1024);
    let pairs = 0;
    const visit = (i: number, j: number) => {
      const pattern = this.pattern(i, j);
      let w = weights[pattern];
      if (pattern < S_FIRST) w += tfFirst[firstId[i]];
      if (floor(pattern / S_LAST) % 6 === 0) w += tfLast[lastId[i]];
      pairs++;
      let bin = floor(w) - HISTOGRAM_MIN;
      if (bin < 0) bin = 0;
      else if (bin >= HISTOGRAM_BINS) bin = HISTOGRAM_BINS - 1;
      histogram[bin]++;
      if (w >= threshold) {
        if (links.size === links.a.length) links = growLinks(links, links.size * 2);
        const ri = recordId[i];
        const rj = recordId[j];
        const k = links.size++;
        links.a[k] = ri < rj ? ri : rj;
        links.b[k] = ri < rj ? rj : ri;
        links.weight[k] = w;
      }
    };
    const generator = this.pairs(visit, true);
    let step = generator.next();
    while (!step.done) {
      yield;
      step = generator.next();
    }
    const { pairsByRule, skippedBlocks } = step.value;
    return {
      pairs,
      links: { size: links.size, a: links.a, b: links.b, weight: links.weight },
      histogram,
      pairsByRule,
      skippedBlocks,
    };
  }

  /**
   * Visits every candidate pair once: per rule, per block of equal keys, the pairs that no earlier
   * rule's key joins. Yields after every ~250,000 pairs.
   */
  *pairs(
    visit: (i: number, j: number, rule: number) => void,
    dedupe = true,
  ): Generator<void, { pairsByRule: number[]; skippedBlocks: number }, undefined> {
    const keys = this.prepared.keys;
    const mask = this.batch.mask;
    const n = this.batch.size;
    const pairsByRule = BLOCKING_RULES.map(() => 0);
    let skippedBlocks = 0;
    let sinceYield = 0;
    const next = new Int32Array(n);
    const slotHead = new Int32Array(n);
    const slotTail = new Int32Array(n);
    const slotSize = new Int32Array(n);
    const block = new Int32Array(MAX_BLOCK);
    for (let r = 0; r < BLOCKING_RULES.length; r++) {
      const scheme = BLOCKING_RULES[r].scheme;
      const key = keys[r];
      // Blocks as linked lists of record indices in ascending order, in order of first member:
      // deterministic, and without sorting.
      const slots = new KeySlots(n);
      for (let i = 0; i < n; i++) {
        const k = key[i];
        if ((mask[i] & scheme) === 0 || k !== k) continue;
        next[i] = -1;
        const before = slots.size;
        const slot = slots.slotOf(k);
        if (slot === before) {
          slotHead[slot] = i;
          slotTail[slot] = i;
          slotSize[slot] = 1;
        } else {
          next[slotTail[slot]] = i;
          slotTail[slot] = i;
          slotSize[slot]++;
        }
      }
      for (let slot = 0; slot < slots.size; slot++) {
        const size = slotSize[slot];
        if (size > MAX_BLOCK) {
          skippedBlocks++;
        } else if (size > 1) {
          for (let m = 0, i = slotHead[slot]; m < size; m++, i = next[i]) block[m] = i;
          for (let a = 0; a < size - 1; a++) {
            const i = block[a];
            for (let b = a + 1; b < size; b++) {
              const j = block[b];
              let claimed = false;
              for (let q = 0; dedupe && q < r; q++) {
                if (keys[q][i] === keys[q][j]) {
                  claimed = true;
                  break;
                }
              }
              if (claimed) continue;
              visit(i, j, r);
              pairsByRule[r]++;
            }
          }
          sinceYield += (size * (size - 1)) / 2;
          if (sinceYield >= 250_000) {
            sinceYield = 0;
            yield;
          }
        }
      }
    }
    return { pairsByRule, skippedBlocks };
  }
}

function drain(generator: Generator<void, unknown, undefined>) {
  while (!generator.next().done) {
    // synchronous
  }
}

function growLinks(links: Links | null, capacity: number): Links {
  const a = new Uint32Array(capacity);
  const b = new Uint32Array(capacity);
  const weight = new Float32Array(capacity);
  if (links) {
    a.set(links.a.subarray(0, links.size));
    b.set(links.b.subarray(0, links.size));
    weight.set(links.weight.subarray(0, links.size));
  }
  return { size: links?.size ?? 0, a, b, weight };
}

/** Links as bytes (for the blob store): size, then the three columns. */
export function serialiseLinks(links: Links): Buffer {
  const n = links.size;
  const out = Buffer.alloc(4 + n * 12);
  out.writeUInt32LE(n, 0);
  Buffer.from(links.a.buffer, links.a.byteOffset, n * 4).copy(out, 4);
  Buffer.from(links.b.buffer, links.b.byteOffset, n * 4).copy(out, 4 + n * 4);
  Buffer.from(links.weight.buffer, links.weight.byteOffset, n * 4).copy(out, 4 + n * 8);
  return out;
}

/** Reads links written by {@link serialiseLinks}. */
export function deserialiseLinks(bytes: Buffer): Links {
  const n = bytes.readUInt32LE(0);
  if (bytes.length !== 4 + n * 12) throw new Error('a linkage links blob is truncated');
  const aligned = new ArrayBuffer(n * 12);
  new Uint8Array(aligned).set(bytes.subarray(4));
  return {
    size: n,
    a: new Uint32Array(aligned, 0, n),
    b: new Uint32Array(aligned, n * 4, n),
    weight: new Float32Array(aligned, n * 8, n),
  };
}
