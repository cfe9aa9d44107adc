/**
 * The benchmark's baseline: the same blocking rules, comparison levels and weights as the linkage
 * library, written the textbook way: records as objects, blocks in a Map of string keys, every
 * comparison computed from the strings each time (Jaro-Winkler, name groups, surname parts), and
 * each pair's weight summed from log2(m/u) as it goes. It must find the same pairs and links as
 * `PartitionScorer`; the benchmark checks that and compares their speed.
 */
import {
  BLOCKING_RULES,
  COMPARISONS,
  type LinkageModel,
  MIN_TYPO_LENGTH,
  type RecordBatch,
  type TermFrequencies,
  deletionNeighbourhood,
  dobLevel,
  houseNumberOf,
  jaroWinkler,
  lastNameCode,
  nameCode,
  nameGroup,
  priorWeight,
  ssnLevel,
  textOneTypo,
  tfAdjustment,
} from '@broker/linkage';

interface NaiveRecord {
  mask: number;
  /** Both names' codes in the order written, for rules that take only pairs whose names are swapped. */
  names: string;
  first: string;
  last: string;
  middle: number;
  year: number;
  month: number;
  day: number;
  sex: number;
  ssn: number;
  zip: string;
  id: string;
  address: string;
  city: string;
}

/**
 * The blocking keys of a record as strings, in rule order: one per rule ('' where the rule does not
 * apply), several for a multi-key rule.
 */
function keysOf(r: NaiveRecord): string[][] {
  const dob = r.year ? `${r.year}-${Math.min(r.month, r.day)}-${Math.max(r.month, r.day)}` : '';
  const group = r.first ? nameGroup(r.first) : '';
  const code = r.last ? lastNameCode(r.last) : '';
  const all = (...parts: (string | number)[]) =>
    parts.every((p) => p !== '' && p !== 0) ? parts.join('|') : '';
  const codes = r.first && r.last ? [nameCode(r.first), code].sort().join('|') : '';
  const initials = r.first && r.last ? [r.first[0], r.last[0]].sort().join('') : '';
  const house = houseNumberOf(r.address);
  const one = [
    all(dob, group),
    all(dob, code),
    all(dob, r.zip),
    all(dob, r.sex, r.middle),
    all(group, code, r.year, r.month),
    all(group, code, r.year, r.day),
    all(group, code, r.month ? `${r.month}-${r.day}` : ''),
    all(r.ssn),
    all(r.id),
    all(codes, r.year),
    all(codes, r.zip),
    all(group, code),
    all(codes),
    all(dob, initials),
  ];
  const many = [
    r.address ? [...new Set([r.first, r.last].filter((n) => n).map((n) => `${r.address}|${n[0]}`))] : [],
    r.zip.length >= MIN_TYPO_LENGTH && house
      ? deletionNeighbourhood(r.zip).map((variant) => `${variant}|${house}`)
      : [],
    r.id.length >= MIN_TYPO_LENGTH && initials
      ? deletionNeighbourhood(r.id).map((variant) => `${variant}|${initials}`)
      : [],
  ];
  return [...one.map((key) => (key ? [key] : [])), ...many];
}

/** Whether two records share a key of one rule. */
const share = (a: string[], b: string[]) => a.some((key) => b.includes(key));

const jwLevel = (a: string, b: string) => {
  const s = jaroWinkler(a, b);
  return s >= 0.92 ? 2 : s >= 0.85 ? 3 : 4;
};

function nameLevel(a: string, b: string, parts: boolean): number {
  if (!a || !b) return 5;
  if (a === b) return 0;
  if (!parts) {
    if (nameGroup(a) === nameGroup(b)) return 1;
    if (a.length === 1 || b.length === 1) return a[0] === b[0] ? 3 : 4;
    return jwLevel(a, b);
  }
  // As the library does: the first two parts of a hyphenated surname.
  const pa = a.includes('-') ? a.split('-').slice(0, 2) : [];
  const pb = b.includes('-') ? b.split('-').slice(0, 2) : [];
  if (pa.includes(b) || pb.includes(a) || pa.some((p) => pb.includes(p))) return 1;
  const s = jaroWinkler(a, b);
  return s >= 0.92 ? 2 : s >= 0.85 ? 3 : 4;
}

/**
 * Both name levels, compared crosswise too (a swap), as the library does, the closer crosswise
 * level in the given name's place; and whether crosswise.
 */
function nameLevels(a: NaiveRecord, b: NaiveRecord): [number, number, boolean] {
  const first = nameLevel(a.first, b.first, false);
  const last = nameLevel(a.last, b.last, true);
  if (first < 2 || last < 2 || (first === 5 && last === 5)) return [first, last, false];
  // One record has one name: it against the other record's other name.
  if (last === 5) {
    const [x, y] = a.last ? [b.first, a.last] : [a.first, b.last];
    const cross = !y ? 5 : x === y ? 0 : jwLevel(x, y);
    return cross < first ? [5, cross, true] : [first, last, false];
  }
  if (first === 5) {
    const [x, y] = a.first ? [b.last, a.first] : [a.last, b.first];
    const cross = !y ? 5 : x === y ? 0 : jwLevel(x, y);
    return cross < last ? [cross, 5, true] : [first, last, false];
  }
  const crossA = a.first === b.last ? 0 : jwLevel(a.first, b.last);
  const crossB = a.last === b.first ? 0 : jwLevel(a.last, b.first);
  const [low, high] = [Math.min(crossA, crossB), Math.max(crossA, crossB)];
  if (low + high >= first + last || (low !== 0 && high === 4)) return [first, last, false];
  return [low, high, true];
}

const agree = (a: number, b: number) => (a === 0 || b === 0 ? 2 : a === b ? 0 : 1);
const code = (a: string, b: string) =>
  !a || !b ? 3 : a === b ? 0 : a.length >= 4 && b.length >= 4 && textOneTypo(a, b) ? 1 : 2;
const text = (a: string, b: string, threshold: number) =>
  !a || !b ? 3 : a === b ? 0 : jaroWinkler(a, b) >= threshold ? 1 : 2;

/** Scores a partition the textbook way; returns the pairs compared and the links found. */
export function naiveScore(
  batch: RecordBatch,
  model: LinkageModel,
  tf: TermFrequencies,
): { pairs: number; links: number } {
  const records: NaiveRecord[] = [];
  for (let i = 0; i < batch.size; i++) {
    records.push({
      mask: batch.mask[i],
      names: `${nameCode(batch.first(i))}|${lastNameCode(batch.last(i))}`,
      first: batch.first(i),
      last: batch.last(i),
      middle: batch.middleInitial[i],
      year: batch.year[i],
      month: batch.month[i],
      day: batch.day[i],
      sex: batch.sex[i],
      ssn: batch.ssn[i],
      zip: batch.names[batch.zip[i]],
      id: batch.names[batch.idNumber[i]],
      address: batch.names[batch.address[i]],
      city: batch.names[batch.city[i]],
    });
  }
  const keys = records.map(keysOf);
  let pairs = 0;
  let links = 0;
  BLOCKING_RULES.forEach((rule, r) => {
    const blocks = new Map<string, number[]>();
    records.forEach((record, i) => {
      if ((record.mask & rule.scheme) === 0) return;
      for (const key of keys[i][r]) {
        const block = blocks.get(key);
        if (block) block.push(i);
        else blocks.set(key, [i]);
      }
    });
    // A pair sharing several keys of a multi-key rule is compared once.
    const seen = new Set<string>();
    for (const block of blocks.values()) {
      if (block.length > 2000) continue;
      for (let x = 0; x < block.length; x++) {
        for (let y = x + 1; y < block.length; y++) {
          const i = block[x];
          const j = block[y];
          if (rule.multiKey) {
            const pair = i < j ? `${i},${j}` : `${j},${i}`;
            if (seen.has(pair)) continue;
            seen.add(pair);
          }
          const undated = records[i].year === 0 || records[j].year === 0;
          const namesDiffer = records[i].names !== records[j].names;
          const takes = (q: number) =>
            (!BLOCKING_RULES[q].withoutDob || undated) && (!BLOCKING_RULES[q].namesDiffer || namesDiffer);
          if (!takes(r)) continue;
          let claimed = false;
          for (let q = 0; q < r; q++) if (share(keys[i][q], keys[j][q]) && takes(q)) claimed = true;
          if (claimed) continue;
          pairs++;
          if (weigh(records[i], records[j], model, tf) >= model.threshold) links++;
        }
      }
    }
  });
  return { pairs, links };
}

function weigh(a: NaiveRecord, b: NaiveRecord, model: LinkageModel, tf: TermFrequencies): number {
  const [first, last, swapped] = nameLevels(a, b);
  const levels = [
    first,
    last,
    dobLevel(a.year, a.month, a.day, b.year, b.month, b.day),
    ssnLevel(a.ssn, b.ssn),
    agree(a.sex, b.sex),
    code(a.zip, b.zip),
    agree(a.middle, b.middle),
    code(a.id, b.id),
    text(a.address, b.address, 0.9),
    text(a.city, b.city, 0.88),
  ];
  let w = priorWeight(model.lambda);
  levels.forEach((level, c) => {
    if (level >= COMPARISONS[c].levels.length) return;
    w += Math.log2(Math.max(model.m[c][level], 1e-9) / Math.max(model.u[c][level], 1e-12));
  });
  if (levels[0] === 0 && !swapped && tf.first.has(a.first))
    w += tfAdjustment(model.u[0][0], tf.first.get(a.first)!, tf.records);
  if (levels[1] === 0 && !swapped && tf.last.has(a.last))
    w += tfAdjustment(model.u[1][0], tf.last.get(a.last)!, tf.records);
  if (levels[9] === 0 && tf.city.has(a.city))
    w += tfAdjustment(model.u[9][0], tf.city.get(a.city)!, tf.records);
  return w;
}
