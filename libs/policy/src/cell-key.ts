/**
 * The cell-key method of perturbation (docs/disclosure-control.md), as statistical offices use it
 * (ABS TableBuilder): every record (or linked person) has a permanent random key; a count's cell key
 * is the sum of its records' keys modulo {@link CELL_KEY_MODULUS}; the perturbation is read from a
 * fixed table by cell key. The same set of records therefore always gets the same count, whatever
 * query selects it, so asking again tells nothing new; two different sets get perturbations that
 * are, to the caller, independent draws. Pure: no SQL, no database.
 */
import { quoteIdent } from './sql-builder';

/** Cell keys are sums of record keys modulo this: record keys are uniform on 0..255. */
export const CELL_KEY_MODULUS = 256;

/** The bound of every perturbation: each perturbed count is within ±NOISE_BOUND of the truth. */
export const NOISE_BOUND = 2;

/**
 * How many of the {@link CELL_KEY_MODULUS} cell keys get each perturbation: 0 on 112 (43.75%),
 * ±1 on 64 each (25%), ±2 on 8 each (3.125%). Mean 0, variance 0.75. The rare ±2 keep the chance
 * that two answers sit at opposite ends of their bounds (what exact inference needs) near 0.1%.
 */
const SHARES: readonly [number, number][] = [
  [0, 112],
  [1, 64],
  [-1, 64],
  [2, 8],
  [-2, 8],
];

/**
 * The perturbation table, by cell key: the shares above in a fixed shuffled order (a linear
 * congruential generator with a fixed seed), so that neighbouring keys are unrelated.
 */
export const PERTURBATION_TABLE: readonly number[] = (() => {
  const table = SHARES.flatMap(([value, count]) => new Array<number>(count).fill(value));
  let state = 0x2545f491;
  for (let i = table.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [table[i], table[j]] = [table[j], table[i]];
  }
  return table;
})();

/** The perturbation of a count whose cell key is `cellKey` (any integer; reduced modulo the table). */
export function perturbation(cellKey: number): number {
  const k = ((cellKey % CELL_KEY_MODULUS) + CELL_KEY_MODULUS) % CELL_KEY_MODULUS;
  return PERTURBATION_TABLE[k];
}

/**
 * The count an answer shows for a group of `count` records (at least `minCellSize`, else it is left
 * out) with cell key `cellKey`: the count plus its perturbation, never shown below `minCellSize`
 * (a shown count below it would say the group is small, which its presence already denies).
 */
export function perturbedCount(count: number, cellKey: number, minCellSize: number): number {
  return Math.max(minCellSize, count + perturbation(cellKey));
}

/**
 * The SQL of a record's permanent key, 0..255, in the record table aliased `t`: the low byte of its
 * random row id, drawn once when the record is stored and never released.
 */
export function recordKeySql(t: string): string {
  return `(${t}.${quoteIdent('_rid')} & 255)`;
}

/**
 * The SQL of a linked person's permanent key, 0..255, from the person id of the linkage run in
 * force: a hash, so keys of consecutive ids are unrelated. Person ids are internal and never leave.
 */
export function personCellKeySql(personIdSql: string): string {
  return `(hashint8(${personIdSql}) & 255)`;
}

/** The SQL aggregate of a cell key over the keys `keySql` of a group's members. */
export function cellKeySql(keySql: string): string {
  return `(coalesce(sum(${keySql}), 0) % ${CELL_KEY_MODULUS})::int`;
}
