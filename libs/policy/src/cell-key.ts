/**
 * The cell-key method of perturbation (docs/disclosure-control.md), as statistical offices use it
 * (ABS TableBuilder), with the perturbation a keyed function of both the cell key and the count:
 * every record (or linked person) has a permanent random key, never released; a count's cell key is
 * the sum of its records' keys modulo {@link CELL_KEY_MODULUS}; the perturbation is drawn from the
 * shares below by an HMAC, under a secret of the deployment, of the cell key and the count. The
 * same set of records therefore always gets the same count, whatever query selects it, so asking
 * again tells nothing new; two different sets get perturbations that are, to the caller,
 * independent draws, even where one set is the union of others.
 *
 * Before, the perturbation was read from a public table by the cell key alone, modulo 256: cell keys
 * add up over disjoint sets, so the answers of a few dozen unions of disjoint sets were a system of
 * equations in their counts and keys that had one solution, the exact count of a small group among
 * them (an attacker's solver found it in 30 queries). With a secret function of key and count, each
 * answer adds an unknown draw of its own, and the system has no more exact solution than a pair of
 * answers has. Pure: no SQL, no database.
 */
import { createHmac } from 'node:crypto';
import { quoteIdent } from './sql-builder';

/** Cell keys are sums of record keys modulo this: record keys are uniform on 0..2^31-1. */
export const CELL_KEY_MODULUS = 2 ** 31;

/** The bound of every perturbation: each perturbed count is within ±NOISE_BOUND of the truth. */
export const NOISE_BOUND = 2;

/**
 * How many of 256 draws get each perturbation: 0 on 112 (43.75%), ±1 on 64 each (25%), ±2 on 8 each
 * (3.125%). Mean 0, variance 0.75. The rare ±2 keep the chance that two answers sit at opposite ends
 * of their bounds (what exact inference needs) near 0.1%.
 */
const SHARES: readonly [number, number][] = [
  [0, 112],
  [1, 64],
  [-1, 64],
  [2, 8],
  [-2, 8],
];

/** The perturbation of each draw 0..255, in the order of {@link SHARES}. */
const DRAWS: readonly number[] = SHARES.flatMap(([value, count]) => new Array<number>(count).fill(value));

const keys = new WeakMap<Buffer, Buffer>();

/**
 * The key of perturbations, from the deployment's secret (`data_plane_secret`, the same on every
 * instance): derived for this use alone, so that it is no other use's key.
 */
export function perturbationKey(secret: Buffer): Buffer {
  let key = keys.get(secret);
  if (!key) {
    key = createHmac('sha256', secret).update('aggregate cell-key perturbation v2').digest();
    keys.set(secret, key);
  }
  return key;
}

/**
 * The perturbation of a count of `count` members whose cell key is `cellKey` (reduced modulo
 * {@link CELL_KEY_MODULUS}), under `key` ({@link perturbationKey}).
 */
export function perturbation(cellKey: number | string | bigint, count: number, key: Buffer): number {
  const reduced =
    ((BigInt(cellKey) % BigInt(CELL_KEY_MODULUS)) + BigInt(CELL_KEY_MODULUS)) % BigInt(CELL_KEY_MODULUS);
  const draw = createHmac('sha256', key).update(`${reduced}:${count}`).digest()[0];
  return DRAWS[draw];
}

/**
 * Whether a perturbed answer lists a group of `count` members with cell key `cellKey`: only if both
 * its count and its perturbed count are at least `minCellSize`. A group below the minimum is never
 * listed; a group of the minimum or one more is left out when its draw takes it below. Were the
 * listing decided by the true count alone, a group's presence would be an exact test of "at least
 * `minCellSize`": an analyst who can order records finely (a timestamp, a key, a hash released
 * under an AGGREGATE_ONLY grant) would grow a set until it appears, step back to a set of exactly
 * `minCellSize - 1`, and add any combination to it: present means the combination exists, with
 * certainty (docs/disclosure-control.md, "The threshold oracle"). {@link listedSql} is the same
 * decision in SQL, so that a statement reads only the groups an answer lists.
 */
export function listed(
  count: number,
  cellKey: number | string | bigint,
  minCellSize: number,
  key: Buffer,
): boolean {
  return count > 0 && count >= minCellSize && count + perturbation(cellKey, count, key) >= minCellSize;
}

/**
 * {@link listed} in SQL, over a group's count `countSql` (an integer) and cell key `cellKeySql` (its
 * text, reduced as {@link cellKeySql} writes it), with the minimum and the key of perturbations as
 * the placeholders given (`keyParam` a bytea): the HMAC's first byte picks the perturbation from
 * the same draws, written into the statement as an array. `public.hmac` is pgcrypto's.
 */
export function listedSql(
  countSql: string,
  cellKeyText: string,
  minCellSizeParam: string,
  keyParam: string,
): string {
  const draw = `get_byte(public.hmac(convert_to(${cellKeyText} || ':' || ${countSql}, 'UTF8'), ${keyParam}, 'sha256'), 0)`;
  return `(${countSql} > 0 AND ${countSql} >= ${minCellSizeParam} AND ${countSql} + ('{${DRAWS.join(',')}}'::int[])[${draw} + 1] >= ${minCellSizeParam})`;
}

/**
 * The count an answer shows for a group of `count` records that it lists ({@link listed}) with
 * cell key `cellKey`: the count plus its perturbation, which listing keeps at `minCellSize` or more
 * (a shown count below it would say the group is small, which its presence already denies).
 */
export function perturbedCount(
  count: number,
  cellKey: number | string | bigint,
  minCellSize: number,
  key: Buffer,
): number {
  return Math.max(minCellSize, count + perturbation(cellKey, count, key));
}

/**
 * The SQL of a record's permanent key, 0..2^31-1, in the record table aliased `t`: 31 bits of its
 * random row id, drawn once when the record is stored and never released. Not its lowest bits: the
 * row id is `random()` scaled to 2^53, whose lowest bit is always 1 (so every key was odd, and a
 * cell key had its count's parity).
 */
export function recordKeySql(t: string): string {
  return `((${t}.${quoteIdent('_rid')} >> 16) & ${CELL_KEY_MODULUS - 1})`;
}

/**
 * The SQL of a linked person's permanent key, 0..2^31-1, from the person id of the linkage run in
 * force: a hash, so keys of consecutive ids are unrelated. Person ids are internal and never leave.
 */
export function personCellKeySql(personIdSql: string): string {
  return `(hashint8extended(${personIdSql}, 0) & ${CELL_KEY_MODULUS - 1})`;
}

/** The SQL aggregate of a cell key over the keys `keySql` of a group's members, as text. */
export function cellKeySql(keySql: string): string {
  return `(coalesce(sum(${keySql}), 0) % ${CELL_KEY_MODULUS})::text`;
}
