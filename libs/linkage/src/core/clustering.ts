/**
 * From links to persons. Plain connected components chain: one wrong link joins two people, and
 * every record of both. Here links are taken strongest first, and a link that would join two
 * clusters is refused when the clusters conflict: they hold SSNs that are not one typo apart, or
 * dates of birth that no typo or day/month swap explains, other than the two dates of the link's
 * own records (those the model has weighed: a link is a link because the rest of the pair
 * outweighs them, and a date replaced by another person's is noise that the model learns the rate
 * of). Two SSNs stay a veto even on the link itself: an identifier given to one person, which on a
 * million county records told namesakes born the same day apart (313 such links were wrong, 107
 * right). Every record ends in exactly one cluster; a record without links is a cluster of its own.
 */
import { dobLevel, ssnOneTypo } from './comparisons';

/** The date-of-birth level of dates that no typo or swap explains (see comparisons.ts). */
const DOB_DIFFERENT = 4;

// Math's functions as module constants: read once, not looked up on the global object in hot loops.
const { floor, round } = Math;

/** What clustering needs of each record (dense indices 0 … n-1). */
export interface ClusterRecords {
  size: number;
  ssn: Uint32Array;
  year: Uint16Array;
  month: Uint8Array;
  day: Uint8Array;
}

/** Links between dense record indices. */
export interface IndexLinks {
  size: number;
  a: Uint32Array;
  b: Uint32Array;
  weight: Float32Array;
}

/** Result of {@link clusterRecords}. */
export interface Clusters {
  /** Per record, its cluster: the smallest record index in the cluster. */
  label: Uint32Array;
  /** Number of clusters. */
  count: number;
  /** Links that joined two clusters, and links refused for a conflict. */
  merges: number;
  refused: number;
}

/** At most this many distinct SSNs (and dates of birth) are remembered per cluster. */
const MAX_VALUES = 8;

/**
 * A link at least this strong (odds of 2^20 to 1) joins its clusters despite a conflict: its pair
 * agrees on so much besides (an id, both names, the address) that the model has already weighed
 * the date or SSN that disagrees; a date of birth replaced by another person's is noise, not a
 * second person.
 */
export const CONFLICT_OVERRIDE_WEIGHT = 20;

/**
 * Clusters records by their links, strongest first, refusing merges of conflicting clusters
 * unless the link is at least `overrideWeight` strong.
 * Deterministic: ties in weight are taken in the order of `links`.
 */
export function clusterRecords(
  records: ClusterRecords,
  links: IndexLinks,
  overrideWeight = CONFLICT_OVERRIDE_WEIGHT,
  apart: readonly (readonly [number, number])[] = [],
): Clusters {
  const n = records.size;
  const parent = new Uint32Array(n);
  for (let i = 0; i < n; i++) parent[i] = i;
  const find = (x: number): number => {
    let root = x;
    while (parent[root] !== root) root = parent[root];
    while (parent[x] !== root) {
      const next = parent[x];
      parent[x] = root;
      x = next;
    }
    return root;
  };
  // Distinct SSNs and dates of birth of each cluster (up to MAX_VALUES), kept at its root.
  const ssns = new ValueSets(n);
  const dobs = new ValueSets(n);
  for (let i = 0; i < n; i++) {
    if (records.ssn[i]) ssns.init(i, records.ssn[i]);
    if (records.year[i]) dobs.init(i, dobOf(records, i));
  }

  // Pairs a reviewer decided are not one person: per record, the records it must stay apart from,
  // and per cluster root, its records that have any (few: only reviewed records).
  const partners = new Map<number, number[]>();
  for (const [x, y] of apart) {
    partners.set(x, [...(partners.get(x) ?? []), y]);
    partners.set(y, [...(partners.get(y) ?? []), x]);
  }
  const constrained = new Map<number, number[]>();
  for (const x of partners.keys()) constrained.set(x, [x]);
  const keptApart = (ra: number, rb: number) => {
    const inA = constrained.get(ra);
    if (!inA || !constrained.has(rb)) return false;
    return inA.some((x) => partners.get(x)!.some((y) => find(y) === rb));
  };

  const order = strongestFirst(links);
  let merges = 0;
  let refused = 0;
  for (let k = 0; k < order.length; k++) {
    const link = order[k];
    const a = links.a[link];
    const b = links.b[link];
    const ra = find(a);
    const rb = find(b);
    if (ra === rb) continue;
    if (
      (links.weight[link] < overrideWeight &&
        (ssns.conflict(ra, rb, ssnsConflict, 0, 0) ||
          dobs.conflict(ra, rb, dobsConflict, dobOf(records, a), dobOf(records, b)))) ||
      keptApart(ra, rb)
    ) {
      refused++;
      continue;
    }
    // The smaller index becomes the root, so a cluster's label is its smallest record.
    const root = ra < rb ? ra : rb;
    const child = ra < rb ? rb : ra;
    parent[child] = root;
    merges++;
    ssns.merge(root, child);
    dobs.merge(root, child);
    const moved = constrained.get(child);
    if (moved) {
      constrained.set(root, [...(constrained.get(root) ?? []), ...moved]);
      constrained.delete(child);
    }
  }

  const label = new Uint32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    // Roots are always the smallest index of their cluster.
    label[i] = find(i);
    if (label[i] === i) count++;
  }
  return { label, count, merges, refused };
}

/** A record's date of birth as YYYYMMDD, 0 when missing. */
function dobOf(records: ClusterRecords, i: number): number {
  return records.year[i] ? records.year[i] * 10_000 + records.month[i] * 100 + records.day[i] : 0;
}

/** Up to MAX_VALUES distinct non-zero values per set, for n sets, in flat typed arrays. */
class ValueSets {
  private readonly values: Uint32Array;
  private readonly sizes: Uint8Array;

  constructor(n: number) {
    this.values = new Uint32Array(n * MAX_VALUES);
    this.sizes = new Uint8Array(n);
  }

  init(set: number, value: number) {
    this.values[set * MAX_VALUES] = value;
    this.sizes[set] = 1;
  }

  /**
   * Whether some value of set a conflicts with some value of set b, other than the pair of values
   * (weighedA, weighedB) that the link joining them has already weighed.
   */
  conflict(
    a: number,
    b: number,
    conflicts: (x: number, y: number) => boolean,
    weighedA: number,
    weighedB: number,
  ): boolean {
    const na = this.sizes[a];
    const nb = this.sizes[b];
    if (na === 0 || nb === 0) return false;
    for (let i = 0; i < na; i++) {
      const x = this.values[a * MAX_VALUES + i];
      for (let j = 0; j < nb; j++) {
        const y = this.values[b * MAX_VALUES + j];
        if (x === y || (x === weighedA && y === weighedB)) continue;
        if (conflicts(x, y)) return true;
      }
    }
    return false;
  }

  /** Adds the values of `child` to `root` (distinct, while there is room). */
  merge(root: number, child: number) {
    let size = this.sizes[root];
    const from = this.sizes[child];
    for (let j = 0; j < from && size < MAX_VALUES; j++) {
      const v = this.values[child * MAX_VALUES + j];
      let present = false;
      for (let i = 0; i < size; i++) if (this.values[root * MAX_VALUES + i] === v) present = true;
      if (!present) this.values[root * MAX_VALUES + size++] = v;
    }
    this.sizes[root] = size;
  }
}

/**
 * Link indices by weight descending (to 1/1024), then in their given order: one native sort of
 * doubles that pack both (a comparator sort of millions of links took seconds).
 */
function strongestFirst(links: IndexLinks): Uint32Array {
  const n = links.size;
  if (n >= 2 ** 24) throw new Error('too many links for one clustering');
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Weights stay far inside ±2^18: each of the seven level weights is bounded.
    const rank = 2 ** 28 - round(links.weight[i] * 1024);
    packed[i] = rank * 2 ** 24 + i;
  }
  packed.sort();
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = packed[i] % 2 ** 24;
  return order;
}

const ssnsConflict = (x: number, y: number) => !ssnOneTypo(x, y);
const dobsConflict = (x: number, y: number) =>
  dobLevel(
    floor(x / 10_000),
    floor(x / 100) % 100,
    x % 100,
    floor(y / 10_000),
    floor(y / 100) % 100,
    y % 100,
  ) === DOB_DIFFERENT;

/** Two clusters' SSNs conflict when some pair of them is neither equal nor one typo apart. */
export function ssnConflict(a: readonly number[], b: readonly number[]): boolean {
  for (const x of a) for (const y of b) if (x !== y && !ssnOneTypo(x, y)) return true;
  return false;
}

/** Two clusters' dates of birth conflict when some pair differs in all of year, month and day
 * and is not a day/month swap. */
export function dobConflict(a: readonly number[], b: readonly number[]): boolean {
  for (const x of a) {
    for (const y of b) {
      if (x === y) continue;
      const level = dobLevel(
        floor(x / 10_000),
        floor(x / 100) % 100,
        x % 100,
        floor(y / 10_000),
        floor(y / 100) % 100,
        y % 100,
      );
      if (level === DOB_DIFFERENT) return true;
    }
  }
  return false;
}

/**
 * Person ids that persist across runs. Each new cluster takes the previous person id most of its
 * records had, if no cluster with more of that person's records claims it (ties: the smaller
 * previous id, then the cluster with the smaller label); every other cluster gets a new id from
 * `nextId` on, in order of label. Returns the id per cluster label and the next unused id.
 *
 * @param label per record, its cluster label (see {@link clusterRecords})
 * @param previous per record, the person id of the previous run, or -1 (a new record)
 */
export function assignPersonIds(
  label: Uint32Array,
  previous: Float64Array,
  nextId: number,
): { personOf: Map<number, number>; nextId: number; kept: number; created: number } {
  // Overlaps (cluster, previous person) → records.
  const overlap = new Map<number, Map<number, number>>();
  const clusters: number[] = [];
  for (let i = 0; i < label.length; i++) {
    const c = label[i];
    if (c === i) clusters.push(c);
    const p = previous[i];
    if (p < 0) continue;
    let counts = overlap.get(c);
    if (!counts) overlap.set(c, (counts = new Map<number, number>()));
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  const candidates: { cluster: number; person: number; records: number }[] = [];
  for (const [cluster, counts] of overlap) {
    for (const [person, records] of counts) candidates.push({ cluster, person, records });
  }
  candidates.sort((x, y) => y.records - x.records || x.person - y.person || x.cluster - y.cluster);
  const personOf = new Map<number, number>();
  const taken = new Set<number>();
  let kept = 0;
  for (const { cluster, person } of candidates) {
    if (personOf.has(cluster) || taken.has(person)) continue;
    personOf.set(cluster, person);
    taken.add(person);
    kept++;
  }
  let created = 0;
  for (const cluster of clusters) {
    if (!personOf.has(cluster)) {
      personOf.set(cluster, nextId++);
      created++;
    }
  }
  return { personOf, nextId, kept, created };
}
