/** A keyed hash: 64 lowercase hex digits (POSIX and JavaScript read this pattern alike). */
const KEYED_HASH_PATTERN = '^[0-9a-f]{64}$';
const KEYED_HASH = new RegExp(KEYED_HASH_PATTERN);

/**
 * What a lookup table keeps of a keyed hash (SQL of its lowercase hex): its first 64 bits as a
 * bigint. Callers pass only text that is 64 lowercase hex digits (see {@link keyPrefixesSql}). The
 * lookup tables of personKey (libs/linkage) and of HASH names (libs/registry) file records under it.
 */
export function keyPrefixSql(hex: string): string {
  return `('x' || left(${hex}, 16))::bit(64)::bigint`;
}

/**
 * The prefixes of the well-formed among `keys` (a `text[]` placeholder), as a bigint[]: anything that
 * is not 64 lowercase hex digits is no keyed hash, and matches nothing either way.
 */
export function keyPrefixesSql(keys: string): string {
  return `ARRAY(SELECT ${keyPrefixSql('k')} FROM unnest(${keys}) AS u (k) WHERE k ~ '${KEYED_HASH_PATTERN}')`;
}

/**
 * {@link keyPrefixSql} in Node, as decimal text: the first 64 bits of a keyed hash's lowercase hex as
 * a signed bigint, or null for anything that is not 64 lowercase hex digits (which
 * {@link keyPrefixesSql} leaves out).
 */
export function keyPrefixOf(hex: string): string | null {
  return KEYED_HASH.test(hex) ? BigInt.asIntN(64, BigInt(`0x${hex.slice(0, 16)}`)).toString() : null;
}
