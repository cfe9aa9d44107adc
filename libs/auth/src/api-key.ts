import { createHash, randomBytes } from 'node:crypto';

const PREFIX = 'dsb_';

/** A new API key: 256 random bits, shown to its owner once and stored only as its hash. */
export function generateApiKey(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

/**
 * The stored form of a key. A fast hash suffices because keys carry 256 bits of entropy; the
 * bootstrap token is the operator's choice (a short one is warned about at start, to be rotated).
 */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * The first characters of a key, kept to let people tell their keys apart: ten at most, and never
 * more than a quarter of the key (a short bootstrap token is not kept whole).
 */
export function keyPrefix(key: string): string {
  return key.slice(0, Math.min(10, Math.floor(key.length / 4)));
}
