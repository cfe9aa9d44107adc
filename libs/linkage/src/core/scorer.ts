/**
 * Candidate pairs and their match weights. For one partition of records: every blocking rule of
 * the partition's schemes forms blocks of equal keys, every pair in a block not claimed by an
 * earlier rule is compared, and its comparison pattern is either counted (to fit the model) or
 * weighed (to link). The hot loop touches typed arrays only; names are interned integers with a
 * cache of their similarity levels.
 */
import {
  BLOCKING_RULES,
  EM_RULES,
  type RuleKeys,
  SCHEME_A,
  claimedBy,
  firstSharedKey,
  ruleTakes,
} from './blocking';
import { CITY, COMPARISONS, FIRST, LAST, LEVELS, RADIX, STRIDE, dobLevel, ssnOneTypo } from './comparisons';
import {
  LEVEL_SLOTS,
  type LinkageModel,
  type PatternCounts,
  type TermFrequencies,
  addPattern,
  levelWeightTable,
  priorWeight,
  tfAdjustment,
} from './model';
import { KeySlots } from './hash-tables';
import { PreparedBatch } from './prepared-batch';
import type { RecordBatch } from './record-batch';

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { floor, imul, min } = Math;

/** Blocks larger than this are not compared (their pairs would swamp a partition); they are counted. */
export const MAX_BLOCK = 2_000;

/** Match weights are counted per unit-wide bin over this range; weights outside fall in the end bins. */
export const HISTOGRAM_MIN = -60;
export const HISTOGRAM_MAX = 60;
const HISTOGRAM_BINS = HISTOGRAM_MAX - HISTOGRAM_MIN;

/** Pairs within this much of the threshold are kept for review (uncertain pairs). */
export const REVIEW_MARGIN = 2;
/** At most this many uncertain pairs are kept per partition, the nearest to the threshold. */
export const REVIEW_PER_PARTITION = 50;
/** Candidates for review gathered per partition before the nearest are chosen. */
const REVIEW_GATHERED = 5_000;

/** Uncertain pairs: record ids (smaller first), comparison pattern and weight. */
export interface ReviewPair {
  a: number;
  b: number;
  pattern: number;
  weight: number;
}

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
  /** The pairs nearest the threshold (at most {@link REVIEW_PER_PARTITION}), nearest first. */
  review: ReviewPair[];
}

const S_FIRST = STRIDE[0];
const S_LAST = STRIDE[1];
const S_DOB = STRIDE[2];
const S_SSN = STRIDE[3];
const S_SEX = STRIDE[4];
const S_ZIP = STRIDE[5];
const S_MIDDLE = STRIDE[6];
const S_ID = STRIDE[7];
const S_ADDRESS = STRIDE[8];
const S_CITY = STRIDE[9];
const COMPARISON_COUNT = COMPARISONS.length;

/**
 * Compares pairs of one partition. `run` drives it to the end; `steps` yields every few hundred
 * thousand pairs so that an asynchronous caller can let its event loop breathe (BullMQ renews
 * job locks on timers).
 */
export class PartitionScorer {
  readonly prepared: PreparedBatch;
  private readonly batch: RecordBatch;
  private weights: Float64Array | null = null;
  private prior = 0;
  private tfFirst: Float64Array | null = null;
  private tfLast: Float64Array | null = null;
  private tfCity: Float64Array | null = null;
  /** The threshold of the model in use. */
  threshold = Infinity;
  /** The levels of the pair {@link pattern} last compared, LEVEL_SLOTS apart (c · LEVEL_SLOTS). */
  readonly levels = new Int32Array(COMPARISON_COUNT * LEVEL_SLOTS);
  /** Whether that pair's names agree crosswise (swapped); their frequencies then adjust nothing. */
  swapped = false;

  constructor(batch: RecordBatch | PreparedBatch) {
    this.prepared = batch instanceof PreparedBatch ? batch : new PreparedBatch(localityOrder(batch));
    this.batch = this.prepared.batch;
  }

  /**
   * The comparison pattern of records i and j; their levels are left in {@link levels} (level of
   * comparison c at c · LEVEL_SLOTS + level... as `levels[c]`).
   */
  pattern(i: number, j: number): number {
    const b = this.batch;
    const p = this.prepared;
    const lv = this.levels;
    const names = p.nameLevels(i, j);
    const first = (names >>> 3) & 7;
    const last = names & 7;
    this.swapped = names >= 64;
    const s1 = b.ssn[i];
    const s2 = b.ssn[j];
    const x1 = b.sex[i];
    const x2 = b.sex[j];
    const i1 = b.middleInitial[i];
    const i2 = b.middleInitial[j];
    lv[0] = first;
    lv[1] = last;
    lv[2] = dobLevel(b.year[i], b.month[i], b.day[i], b.year[j], b.month[j], b.day[j]);
    lv[3] = s1 === 0 || s2 === 0 ? 3 : s1 === s2 ? 0 : ssnOneTypo(s1, s2) ? 1 : 2;
    lv[4] = x1 === 0 || x2 === 0 ? 2 : x1 === x2 ? 0 : 1;
    lv[5] = p.codeLevel(b.zip[i], b.zip[j]);
    lv[6] = i1 === 0 || i2 === 0 ? 2 : i1 === i2 ? 0 : 1;
    lv[7] = p.codeLevel(b.idNumber[i], b.idNumber[j]);
    lv[8] = p.addressLevel(b.address[i], b.address[j]);
    lv[9] = p.cityLevel(b.city[i], b.city[j]);
    return (
      lv[0] * S_FIRST +
      lv[1] * S_LAST +
      lv[2] * S_DOB +
      lv[3] * S_SSN +
      lv[4] * S_SEX +
      lv[5] * S_ZIP +
      lv[6] * S_MIDDLE +
      lv[7] * S_ID +
      lv[8] * S_ADDRESS +
      lv[9] * S_CITY
    );
  }

  /** Sets the model that {@link score} weighs pairs with. */
  useModel(model: LinkageModel, tf: TermFrequencies): this {
    this.weights = levelWeightTable(model);
    this.prior = priorWeight(model.lambda);
    this.threshold = model.threshold;
    const names = this.prepared.names;
    // Adjustments per interned id; values that are not a given name (surname, city) get 0.
    const first = new Float64Array(names.length);
    const last = new Float64Array(names.length);
    const city = new Float64Array(names.length);
    const uFirst = model.u[FIRST][0];
    const uLast = model.u[LAST][0];
    const uCity = model.u[CITY][0];
    for (let id = 0; id < names.length; id++) {
      const name = names[id];
      const f = tf.first.get(name);
      if (f !== undefined) first[id] = tfAdjustment(uFirst, f, tf.records);
      const l = tf.last.get(name);
      if (l !== undefined) last[id] = tfAdjustment(uLast, l, tf.records);
      const c = tf.city.get(name);
      if (c !== undefined) city[id] = tfAdjustment(uCity, c, tf.records);
    }
    this.tfFirst = first;
    this.tfLast = last;
    this.tfCity = city;
    return this;
  }

  /** The match weight of records i and j under the model. */
  weight(i: number, j: number): number {
    this.pattern(i, j);
    return this.weightOfLevels(i);
  }

  /** The match weight of the levels {@link pattern} left, record i's values adjusting exact agreements. */
  private weightOfLevels(i: number): number {
    const lv = this.levels;
    const weights = this.weights!;
    let w = this.prior;
    for (let c = 0; c < COMPARISON_COUNT; c++) w += weights[c * LEVEL_SLOTS + lv[c]];
    if (lv[0] === 0 && !this.swapped) w += this.tfFirst![this.prepared.firstId[i]];
    if (lv[1] === 0 && !this.swapped) w += this.tfLast![this.prepared.lastId[i]];
    if (lv[9] === 0) w += this.tfCity![this.batch.city[i]];
    return w;
  }

  /** Counts the comparison pattern of every candidate pair (each pair once). */
  countPatterns(): { counts: PatternCounts; pairs: number } {
    const counts: PatternCounts = new Map();
    let pairs = 0;
    const visit = (i: number, j: number) => {
      addPattern(counts, this.pattern(i, j));
      pairs++;
    };
    drain(this.pairs(visit, true));
    return { counts, pairs };
  }

  /**
   * Per rule of {@link EM_RULES} (the blocking rules, then the training rules), the patterns of
   * *all* pairs its blocks hold (not only those it claims), with the comparisons the rule blocks on
   * set to missing: what EM learns m from (see model.ts).
   */
  countPatternsByRule(): PatternCounts[] {
    const counts = EM_RULES.map((): PatternCounts => new Map());
    const masks = EM_RULES.map((rule) => rule.blocksOn);
    const visit = (i: number, j: number, r: number) => {
      let pattern = this.pattern(i, j);
      for (const c of masks[r]) {
        const level = floor(pattern / STRIDE[c]) % RADIX[c];
        pattern += (LEVELS[c] - level) * STRIDE[c];
      }
      addPattern(counts[r], pattern);
    };
    drain(this.pairs(visit, false));
    // The training rules: every pair of their blocks.
    const blocks = new BlockBuilder(this.batch);
    for (let r = BLOCKING_RULES.length; r < EM_RULES.length; r++) {
      const { members, starts, count } = blocks.build(this.prepared.keys[r], EM_RULES[r].scheme);
      for (let block = 0; block < count; block++) {
        for (let a = starts[block]; a < starts[block + 1] - 1; a++) {
          for (let b = a + 1; b < starts[block + 1]; b++) visit(members[a], members[b], r);
        }
      }
    }
    return counts;
  }

  /** Scores every candidate pair, synchronously. */
  score(): ScoreResult {
    const run = this.scoring();
    while (!run.step(Infinity)) {
      // one step does it all
    }
    return run.result();
  }

  /**
   * A scoring of every candidate pair that advances a slice at a time ({@link ScoreRun.step}), so
   * an asynchronous caller can let its event loop breathe between slices (BullMQ renews job locks
   * on timers).
   */
  scoring(): ScoreRun {
    if (!this.weights) throw new Error('useModel() must be called before scoring');
    return new ScoreRun(this);
  }

  /**
   * The hot loop: scores the pairs of blocks [from, to) of rule r that no earlier rule claims,
   * into `acc`. A plain method (not a generator or a callback), so the engine optimises it once
   * and keeps it optimised from slice to slice.
   */
  scoreBlocks(
    r: number,
    members: Int32Array,
    starts: Int32Array,
    leads: Int32Array | null,
    from: number,
    to: number,
    acc: ScoreAccumulator,
  ) {
    const { year, firstCode, codeHash } = this.batch;
    const { his, los, hass, undatedOnly, namesDiffer } = acc.earlier[r];
    const onlyNamesDiffering = BLOCKING_RULES[r].namesDiffer === true;
    const q = r;
    let pairs = 0;
    for (let block = from; block < to; block++) {
      const end = starts[block + 1];
      // Under a `withoutDob` rule, only the block's undated records (first) start pairs.
      const last = leads === null ? end - 1 : min(end - 1, starts[block] + leads[block]);
      for (let a = starts[block]; a < last; a++) {
        const i = members[a];
        for (let b = a + 1; b < end; b++) {
          const j = members[b];
          const sameNames = firstCode[i] === firstCode[j] && codeHash[i] === codeHash[j];
          if (onlyNamesDiffering && sameNames) continue;
          let claimed = false;
          for (let k = 0; k < q; k++) {
            const hi = his[k];
            const lo = los[k];
            const has = hass[k];
            if (
              hi[i] === hi[j] &&
              lo[i] === lo[j] &&
              has[i] === 1 &&
              has[j] === 1 &&
              (undatedOnly[k] === 0 || year[i] === 0 || year[j] === 0) &&
              (namesDiffer[k] === 0 || !sameNames)
            ) {
              claimed = true;
              break;
            }
          }
          if (claimed) continue;
          this.weighPair(i, j, acc);
          pairs++;
        }
      }
    }
    acc.pairs += pairs;
    acc.pairsByRule[r] += pairs;
  }

  /**
   * Scores the pairs of blocks [from, to) of multi-key rule r: each pair once, in the block of the
   * smallest key its records share, unless an earlier rule claims it. These rules' pairs are few
   * (their keys are specific), so the earlier rules are asked one by one.
   */
  scoreManyBlocks(r: number, blocks: ManyBlocks, from: number, to: number, acc: ScoreAccumulator) {
    const keys = this.prepared.keys;
    const many = keys[r].many!;
    const { members, starts, blockHi, blockLo } = blocks;
    let pairs = 0;
    for (let block = from; block < to; block++) {
      const end = starts[block + 1];
      for (let a = starts[block]; a < end - 1; a++) {
        const i = members[a];
        for (let b = a + 1; b < end; b++) {
          const j = members[b];
          const first = firstSharedKey(many, i, j);
          if (many.hi[first] !== blockHi[block] || many.lo[first] !== blockLo[block]) continue;
          if (this.claimedBefore(r, i, j)) continue;
          this.weighPair(i, j, acc);
          pairs++;
        }
      }
    }
    acc.pairs += pairs;
    acc.pairsByRule[r] += pairs;
  }

  /** Whether a rule before r produces the pair (i, j). */
  private claimedBefore(r: number, i: number, j: number): boolean {
    const keys = this.prepared.keys;
    for (let k = 0; k < r; k++) if (claimedBy(keys, k, this.batch, i, j)) return true;
    return false;
  }

  /** Weighs a candidate pair into `acc`: the histogram, the links, the pairs kept for review. */
  private weighPair(i: number, j: number, acc: ScoreAccumulator) {
    const threshold = this.threshold;
    const recordId = this.batch.recordId;
    const pattern = this.pattern(i, j);
    const w = this.weightOfLevels(i);
    if (
      w > threshold - REVIEW_MARGIN &&
      w < threshold + REVIEW_MARGIN &&
      acc.review.length < REVIEW_GATHERED
    ) {
      const ri = recordId[i];
      const rj = recordId[j];
      acc.review.push({ a: ri < rj ? ri : rj, b: ri < rj ? rj : ri, pattern, weight: w });
    }
    let bin = floor(w) - HISTOGRAM_MIN;
    if (bin < 0) bin = 0;
    else if (bin >= HISTOGRAM_BINS) bin = HISTOGRAM_BINS - 1;
    acc.histogram[bin]++;
    if (w >= threshold) {
      let links = acc.links;
      if (links.size === links.a.length) acc.links = links = growLinks(links, links.size * 2);
      const ri = recordId[i];
      const rj = recordId[j];
      const k = links.size++;
      links.a[k] = ri < rj ? ri : rj;
      links.b[k] = ri < rj ? rj : ri;
      links.weight[k] = w;
    }
  }

  /**
   * Visits every candidate pair: per rule, per block of equal keys, the pairs that no earlier
   * rule's key joins (with `dedupe`; without, every pair of every block). For fitting and tests;
   * {@link scoreBlocks} has the same loop written out.
   */
  *pairs(
    visit: (i: number, j: number, rule: number) => void,
    dedupe = true,
  ): Generator<void, { pairsByRule: number[]; skippedBlocks: number }, undefined> {
    const keys = this.prepared.keys;
    const pairsByRule = BLOCKING_RULES.map(() => 0);
    let skippedBlocks = 0;
    const blocks = new BlockBuilder(this.batch);
    let sinceYield = 0;
    for (let r = 0; r < BLOCKING_RULES.length; r++) {
      const rule = BLOCKING_RULES[r];
      const many = keys[r].many;
      const manyBlocks = many ? blocks.buildMany(many, rule.scheme) : null;
      const { members, starts, leads, count, skipped } = manyBlocks
        ? { ...manyBlocks, leads: null }
        : blocks.build(keys[r], rule.scheme, rule.withoutDob);
      skippedBlocks += skipped;
      for (let block = 0; block < count; block++) {
        const end = starts[block + 1];
        const last = leads === null ? end - 1 : min(end - 1, starts[block] + leads[block]);
        for (let a = starts[block]; a < last; a++) {
          const i = members[a];
          for (let b = a + 1; b < end; b++) {
            const j = members[b];
            if (!ruleTakes(r, this.batch, i, j)) continue;
            if (many && manyBlocks) {
              // A pair sharing several keys of the rule is its pair once, in its smallest key's block.
              const first = firstSharedKey(many, i, j);
              if (
                many.hi[first] !== manyBlocks.blockHi[block] ||
                many.lo[first] !== manyBlocks.blockLo[block]
              )
                continue;
            }
            let claimed = false;
            for (let k = 0; dedupe && k < r; k++) {
              if (claimedBy(keys, k, this.batch, i, j)) {
                claimed = true;
                break;
              }
            }
            if (claimed) continue;
            visit(i, j, r);
            pairsByRule[r]++;
          }
        }
        sinceYield += end - starts[block];
        if (sinceYield >= 50_000) {
          sinceYield = 0;
          yield;
        }
      }
    }
    return { pairsByRule, skippedBlocks };
  }
}

/** What a scoring has found so far. */
export interface ScoreAccumulator {
  pairs: number;
  pairsByRule: number[];
  skippedBlocks: number;
  histogram: Float64Array;
  links: Links;
  review: ReviewPair[];
  /** Per rule, the keys of the rules before it (the "claimed" test), flattened. */
  earlier: {
    his: Uint32Array[];
    los: Uint32Array[];
    hass: Uint8Array[];
    undatedOnly: Uint8Array;
    namesDiffer: Uint8Array;
  }[];
}

/** A partition's scoring in progress: rule by rule, a slice of blocks per {@link step}. */
export class ScoreRun {
  private readonly acc: ScoreAccumulator;
  private readonly blocks: BlockBuilder;
  private rule = -1;
  private block = 0;
  private current: {
    members: Int32Array;
    starts: Int32Array;
    leads: Int32Array | null;
    count: number;
    many: ManyBlocks | null;
  } | null = null;

  constructor(private readonly scorer: PartitionScorer) {
    const keys = scorer.prepared.keys;
    this.acc = {
      pairs: 0,
      pairsByRule: BLOCKING_RULES.map(() => 0),
      skippedBlocks: 0,
      histogram: new Float64Array(HISTOGRAM_BINS),
      links: growLinks(null, 1024),
      review: [],
      earlier: BLOCKING_RULES.map((_, r) => ({
        his: keys.slice(0, r).map((k) => k.hi),
        los: keys.slice(0, r).map((k) => k.lo),
        hass: keys.slice(0, r).map((k) => k.has),
        undatedOnly: Uint8Array.from(BLOCKING_RULES.slice(0, r).map((rule) => (rule.withoutDob ? 1 : 0))),
        namesDiffer: Uint8Array.from(BLOCKING_RULES.slice(0, r).map((rule) => (rule.namesDiffer ? 1 : 0))),
      })),
    };
    this.blocks = new BlockBuilder(scorer.prepared.batch);
  }

  /** Scores blocks holding about `budget` records; true once every rule is done. */
  step(budget: number): boolean {
    let left = budget;
    for (;;) {
      if (!this.current || this.block >= this.current.count) {
        if (++this.rule >= BLOCKING_RULES.length) return true;
        const rule = BLOCKING_RULES[this.rule];
        const keys = this.scorer.prepared.keys[this.rule];
        if (keys.many) {
          const many = this.blocks.buildMany(keys.many, rule.scheme);
          this.current = { ...many, leads: null, many };
          this.acc.skippedBlocks += many.skipped;
        } else {
          const built = this.blocks.build(keys, rule.scheme, rule.withoutDob);
          this.current = { ...built, many: null };
          this.acc.skippedBlocks += built.skipped;
        }
        this.block = 0;
        continue;
      }
      const { members, starts, leads, count, many } = this.current;
      let to = this.block;
      while (to < count && left > 0) {
        left -= starts[to + 1] - starts[to];
        to++;
      }
      if (many) this.scorer.scoreManyBlocks(this.rule, many, this.block, to, this.acc);
      else this.scorer.scoreBlocks(this.rule, members, starts, leads, this.block, to, this.acc);
      this.block = to;
      if (left <= 0) return this.rule >= BLOCKING_RULES.length - 1 && this.block >= count;
    }
  }

  result(): ScoreResult {
    const { pairs, links, histogram, pairsByRule, skippedBlocks, review } = this.acc;
    return {
      pairs,
      links: { size: links.size, a: links.a, b: links.b, weight: links.weight },
      histogram,
      pairsByRule,
      skippedBlocks,
      review: nearestFirst(review, this.scorer.threshold).slice(0, REVIEW_PER_PARTITION),
    };
  }
}

/**
 * The blocks of one rule: record indices grouped by equal key (ascending within a block, blocks in
 * order of their first member, so every order is deterministic), singletons and oversized blocks
 * left out. Its buffers are reused from rule to rule.
 */
class BlockBuilder {
  private readonly slotOf: Int32Array;
  private readonly sizes: Int32Array;
  private readonly offsets: Int32Array;
  private readonly members: Int32Array;
  private readonly starts: Int32Array;
  private readonly slots: KeySlots;
  private readonly undated: Int32Array;
  private readonly leads: Int32Array;
  private readonly restOffsets: Int32Array;
  /** The records that reached the partition through each scheme (by scheme bit). */
  private readonly bySchemes = new Map<number, Int32Array>();

  constructor(private readonly batch: RecordBatch) {
    const n = batch.size;
    this.slotOf = new Int32Array(n);
    this.sizes = new Int32Array(n + 1);
    this.offsets = new Int32Array(n + 1);
    this.members = new Int32Array(n);
    this.starts = new Int32Array(n + 1);
    this.slots = new KeySlots(n);
    this.undated = new Int32Array(n + 1);
    this.leads = new Int32Array(n + 1);
    this.restOffsets = new Int32Array(n + 1);
  }

  private schemeMembers(scheme: number): Int32Array {
    let list = this.bySchemes.get(scheme);
    if (!list) {
      const mask = this.batch.mask;
      const all = new Int32Array(this.batch.size);
      let count = 0;
      for (let i = 0; i < mask.length; i++) if ((mask[i] & scheme) !== 0) all[count++] = i;
      list = all.slice(0, count);
      this.bySchemes.set(scheme, list);
    }
    return list;
  }

  build(
    key: RuleKeys,
    scheme: number,
    withoutDob = false,
  ): { members: Int32Array; starts: Int32Array; leads: Int32Array | null; count: number; skipped: number } {
    const { slotOf, sizes, offsets, members, starts, slots, undated, leads, restOffsets } = this;
    const candidates = this.schemeMembers(scheme);
    const m = candidates.length;
    const { hi, lo, has } = key;
    const year = this.batch.year;
    slots.clear();
    for (let c = 0; c < m; c++) {
      const i = candidates[c];
      slotOf[c] = has[i] === 1 ? slots.slotOf(hi[i], lo[i]) : -1;
    }
    const slotCount = slots.size;
    sizes.fill(0, 0, slotCount);
    if (withoutDob) undated.fill(0, 0, slotCount);
    for (let c = 0; c < m; c++) {
      const slot = slotOf[c];
      if (slot < 0) continue;
      sizes[slot]++;
      if (withoutDob && year[candidates[c]] === 0) undated[slot]++;
    }
    // Kept blocks get consecutive ranges of `members`; the others an offset of -1. Under
    // `withoutDob`, a block's undated records come first, and a block without one is not kept.
    let count = 0;
    let skipped = 0;
    let at = 0;
    for (let slot = 0; slot < slotCount; slot++) {
      const size = sizes[slot];
      const keep = size > 1 && size <= MAX_BLOCK && (!withoutDob || undated[slot] > 0);
      if (keep) {
        offsets[slot] = at;
        if (withoutDob) {
          leads[count] = undated[slot];
          restOffsets[slot] = at + undated[slot];
        }
        starts[count++] = at;
        at += size;
      } else {
        if (size > MAX_BLOCK) skipped++;
        offsets[slot] = -1;
      }
    }
    starts[count] = at;
    for (let c = 0; c < m; c++) {
      const slot = slotOf[c];
      if (slot < 0) continue;
      const offset = offsets[slot];
      if (offset < 0) continue;
      const i = candidates[c];
      if (withoutDob && year[i] !== 0) {
        members[restOffsets[slot]++] = i;
      } else {
        members[offset] = i;
        offsets[slot] = offset + 1;
      }
    }
    return { members, starts, leads: withoutDob ? leads : null, count, skipped };
  }

  /**
   * The blocks of a multi-key rule: a record is in the block of each of its keys (ascending within
   * a block, blocks in order of their first entry), with each block's key. Its own buffers: a
   * record has several entries.
   */
  buildMany(many: NonNullable<RuleKeys['many']>, scheme: number): ManyBlocks {
    const candidates = this.schemeMembers(scheme);
    const { start, hi, lo } = many;
    let entries = 0;
    for (let c = 0; c < candidates.length; c++) entries += start[candidates[c] + 1] - start[candidates[c]];
    const slots = new KeySlots(entries);
    const slotOf = new Int32Array(entries);
    const keyAt: number[] = [];
    let e = 0;
    for (let c = 0; c < candidates.length; c++) {
      const i = candidates[c];
      for (let k = start[i]; k < start[i + 1]; k++) {
        const slot = slots.slotOf(hi[k], lo[k]);
        if (slot === keyAt.length) keyAt.push(k);
        slotOf[e++] = slot;
      }
    }
    const slotCount = slots.size;
    const sizes = new Int32Array(slotCount);
    for (let x = 0; x < entries; x++) sizes[slotOf[x]]++;
    const offsets = new Int32Array(slotCount);
    const starts = new Int32Array(slotCount + 1);
    const blockHi = new Uint32Array(slotCount);
    const blockLo = new Uint32Array(slotCount);
    let count = 0;
    let skipped = 0;
    let at = 0;
    for (let slot = 0; slot < slotCount; slot++) {
      const size = sizes[slot];
      if (size > 1 && size <= MAX_BLOCK) {
        offsets[slot] = at;
        blockHi[count] = hi[keyAt[slot]];
        blockLo[count] = lo[keyAt[slot]];
        starts[count++] = at;
        at += size;
      } else {
        if (size > MAX_BLOCK) skipped++;
        offsets[slot] = -1;
      }
    }
    starts[count] = at;
    const members = new Int32Array(at);
    e = 0;
    for (let c = 0; c < candidates.length; c++) {
      const i = candidates[c];
      for (let k = start[i]; k < start[i + 1]; k++) {
        const slot = slotOf[e++];
        if (offsets[slot] >= 0) members[offsets[slot]++] = i;
      }
    }
    return { members, starts, count, skipped, blockHi, blockLo };
  }
}

/** The blocks of a multi-key rule, each with its key. */
export interface ManyBlocks {
  members: Int32Array;
  starts: Int32Array;
  count: number;
  skipped: number;
  blockHi: Uint32Array;
  blockLo: Uint32Array;
}

/**
 * The records in an order that keeps blocks together in memory: grouped by date of birth (every
 * scheme A rule blocks on it; records without one in scheme A by name group). Comparing a block's
 * pairs then reads neighbouring records rather than records scattered over the partition, which
 * makes the pair loop a third faster. A counting sort on 2^16 hash buckets: equal dates are
 * adjacent, and ties keep the given order, so the order is deterministic.
 */
export function localityOrder(batch: RecordBatch): RecordBatch {
  const n = batch.size;
  if (n < 2) return batch;
  const buckets = 1 << 16;
  const bucketOf = new Uint32Array(n);
  const next = new Uint32Array(buckets + 1);
  const { dobKey, groupHash, mask } = batch;
  for (let i = 0; i < n; i++) {
    const key = (mask[i] & SCHEME_A) !== 0 && dobKey[i] !== 0 ? dobKey[i] : groupHash[i] ^ 0x5bd1e995;
    const bucket = imul(key, 0x9e3779b1) >>> 16;
    bucketOf[i] = bucket;
    next[bucket + 1]++;
  }
  for (let b = 0; b < buckets; b++) next[b + 1] += next[b];
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[next[bucketOf[i]]++] = i;
  return batch.reorder(order);
}

/** Uncertain pairs, nearest the threshold first (ties: by record ids, so the order is deterministic). */
export function nearestFirst(pairs: readonly ReviewPair[], threshold: number): ReviewPair[] {
  return [...pairs].sort(
    (x, y) => Math.abs(x.weight - threshold) - Math.abs(y.weight - threshold) || x.a - y.a || x.b - y.b,
  );
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
