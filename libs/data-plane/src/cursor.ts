import { createCipheriv, createDecipheriv, createHmac, hash } from 'node:crypto';

/**
 * Page cursors are keyset cursors: the position of a page's last row (its ordering values, random
 * row id and key, as text) sealed with AES-256-GCM under a server secret kept in PostgreSQL
 * (`data_plane_secret`). Sealed, not only signed: the tie-break's key may be a value the agreement
 * does not release. The seal's associated data binds a cursor to the query that made it (agreement,
 * version, purpose, dataset, ordering and filter): a cursor of another query, agreement or purpose,
 * or one changed by a single bit, does not open.
 */
export interface CursorScope {
  /** The secret (32 bytes) every broker instance reads from PostgreSQL. */
  secret: Buffer;
  /** What the cursor is bound to (see {@link cursorBinding}). */
  binding: string;
}

/** Longer cursors are refused before any work: no position of an honest ordering comes near. */
const MAX_CURSOR_LENGTH = 65_536;
const IV = 12;
const TAG = 16;

const keys = new WeakMap<Buffer, Buffer>();
function cursorKey(secret: Buffer): Buffer {
  let key = keys.get(secret);
  if (!key) {
    key = createHmac('sha256', secret).update('data-plane page cursor v1').digest();
    keys.set(secret, key);
  }
  return key;
}

/** What a cursor is bound to: the query's identity, with its filter as a digest. */
export function cursorBinding(parts: {
  agreementId: string;
  version: number;
  purpose: string;
  datasetId: string;
  orderBy: readonly { field: string; direction: string }[];
  where: unknown;
}): string {
  const where = hash('sha256', stableJson(parts.where ?? null), 'base64url');
  return JSON.stringify([
    parts.agreementId,
    parts.version,
    parts.purpose,
    parts.datasetId,
    parts.orderBy.map((o) => [o.field, o.direction]),
    where,
  ]);
}

/**
 * The smallest length a position is padded to before it is sealed, in bytes: a cipher is as long as
 * what it seals, and the key in a position may be unreleased, so its length must not show. Past it,
 * a position is padded to the next power of two: only keys far longer than a tie-break needs say
 * anything of their length, and only which power of two it is under.
 */
const PADDED = 256;

/** `plain` with trailing spaces (which JSON ignores) up to {@link PADDED} or the next power of two. */
function padded(plain: string): string {
  const bytes = Buffer.byteLength(plain, 'utf8');
  let size = PADDED;
  while (size < bytes) size *= 2;
  return plain + ' '.repeat(size - bytes);
}

/** A cursor for a position (values as the page statement wrote them). */
export function sealCursor(scope: CursorScope, values: readonly (string | null)[]): string {
  const key = cursorKey(scope.secret);
  const plain = padded(JSON.stringify(values));
  // A synthetic IV (an HMAC of what is sealed): the same position of the same query always gives the
  // same cursor, so answers stay deterministic; two different messages never share an IV.
  const iv = createHmac('sha256', key)
    .update(scope.binding)
    .update('\u0000')
    .update(plain)
    .digest()
    .subarray(0, IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(scope.binding, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The position a cursor holds, or null for anything not sealed here for this very query. */
export function openCursor(scope: CursorScope, cursor: unknown): (string | null)[] | null {
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    return null;
  }
  const raw = Buffer.from(cursor, 'base64url');
  if (raw.length <= IV + TAG) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', cursorKey(scope.secret), raw.subarray(0, IV));
    decipher.setAAD(Buffer.from(scope.binding, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV, IV + TAG));
    const text = Buffer.concat([decipher.update(raw.subarray(IV + TAG)), decipher.final()]).toString('utf8');
    const values = JSON.parse(text) as unknown;
    if (!Array.isArray(values) || !values.every((v) => v === null || typeof v === 'string')) return null;
    return values as (string | null)[];
  } catch {
    return null;
  }
}

/** JSON with object members sorted, so that equal filters give equal text. */
function stableJson(value: unknown): string {
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
