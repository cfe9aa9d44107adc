/**
 * The two ways anything enters SQL text here: identifiers through {@link quoteIdent}, values as
 * numbered parameters through {@link SqlParams}. No value is ever written into the text.
 */

/** Quotes a PostgreSQL identifier (as @broker/core does; copied so policy stays free of Nest). */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A column of a table alias, both quoted. */
export function columnRef(tableAlias: string, column: string): string {
  return `${quoteIdent(tableAlias)}.${quoteIdent(column)}`;
}

const SCALAR_TYPES = [
  'text',
  'integer',
  'bigint',
  'double precision',
  'numeric',
  'boolean',
  'date',
  'timestamptz',
  'bytea',
  'uuid',
  'jsonb',
];

/**
 * The casts a parameter may carry. A fixed list, not a pattern: the type is written into the SQL
 * text, so it must never be able to carry anything else.
 */
export const PARAM_TYPES: ReadonlySet<string> = new Set([
  ...SCALAR_TYPES,
  ...SCALAR_TYPES.map((t) => `${t}[]`),
]);

/** PostgreSQL's limit on bind parameters in one statement. */
export const MAX_PARAMS = 65_535;

/** The numbered parameters of one statement; `add` returns the placeholder to write into the text. */
export class SqlParams {
  readonly values: unknown[];

  constructor(values: readonly unknown[] = []) {
    this.values = [...values];
  }

  /** Adds a value and returns `$n`, or `$n::type` when a type is given. */
  add(value: unknown, pgType?: string): string {
    if (pgType !== undefined && !PARAM_TYPES.has(pgType))
      throw new Error(`unsupported parameter type ${pgType}`);
    if (this.values.length >= MAX_PARAMS) throw new Error('too many parameters for one statement');
    this.values.push(value);
    const placeholder = `$${this.values.length}`;
    return pgType === undefined ? placeholder : `${placeholder}::${pgType}`;
  }

  /**
   * A parameter added only when first used, then the same placeholder on every use. PostgreSQL
   * refuses a statement that is sent a parameter it does not use, so a value that only some
   * fragments need (the HMAC key) is passed this way.
   */
  lazy(value: unknown, pgType?: string): () => string {
    let placeholder: string | undefined;
    return () => (placeholder ??= this.add(value, pgType));
  }
}
