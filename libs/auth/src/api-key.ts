import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'dsb_';

/** A new API key: 256 random bits, shown to its owner once and stored only as its hash. */
export function generateApiKey(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

/**
 * The stored form of a key. A fast hash suffices because keys carry 256 bits of entropy (or, for
 * the bootstrap token, at least 24 characters chosen by the operator); no dictionary applies.
 */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The first characters of a key, kept to let people tell their keys apart. */
export function keyPrefix(key: string): string {
  return key.slice(0, 10);
}
