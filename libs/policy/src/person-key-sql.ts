import { keyPrefixSql } from './key-prefix';

/**
 * The key of a scope's pseudonyms (personKey), derived inside PostgreSQL from `linkage_secret`, so
 * that it never leaves the database (`scope`: SQL of the scope's text, `<recipient agency id>/<purpose>`).
 */
export function scopedKeySql(scope: string): string {
  // An uncorrelated subquery: PostgreSQL computes it once per statement.
  return `(SELECT public.hmac(convert_to(${scope}, 'UTF8'), s.secret, 'sha256') FROM linkage_secret s WHERE s.id = 1)`;
}

/** A person's pseudonym under a scope's key: lowercase hex HMAC-SHA-256 of its id's text. */
export function personHashSql(personIdSql: string, scopedKey: string): string {
  return `encode(public.hmac(convert_to(${personIdSql}::text, 'UTF8'), ${scopedKey}, 'sha256'), 'hex')`;
}

/**
 * What a personKey lookup table files a linked record under: the first 64 bits of its person's
 * pseudonym in `scope` (SQL of the scope's text). One home for the linkage library's builds and the
 * registry's upkeep on ingestion.
 */
export function personKeyPrefixSql(personIdSql: string, scope: string): string {
  return keyPrefixSql(personHashSql(personIdSql, scopedKeySql(scope)));
}
