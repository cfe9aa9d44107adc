/**
 * The two ways anything enters SQL text here: identifiers through {@link quoteIdent}, values as
 * numbered parameters through {@link SqlParams} (or, for COPY, which takes none, settings of the
 * transaction through {@link SettingParams}). No value of a caller's, and never the HMAC key, is
 * written into a statement's text. An agreement's row filter is, through {@link LiteralParams}: it
 * must be a constant for PostgreSQL to prove the predicate of its population's partial indexes, in
 * the indexes themselves (DDL), and in every statement that reads the population (see
 * {@link SqlParams.rowFilterParams}).
 */
import { escapeLiteral } from 'pg';

/** Quotes a PostgreSQL identifier (as @broker/core does; copied so policy stays free of Nest). */
export function quoteIdent(name: string): string {
  if (name.includes('\u0000')) throw new Error('identifier contains a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** A column of a table alias, both quoted. */
export function columnRef(tableAlias: string, column: string): string {
  let ofAlias = columnRefs.get(tableAlias);
  const known = ofAlias?.get(column);
  if (known !== undefined) return known;
  const ref = `${quoteIdent(tableAlias)}.${quoteIdent(column)}`;
  // Remembered: a statement names each column several times, and every page names the same ones.
  // The names are the datasets' (and the statements' own aliases), bounded all the same.
  if (!ofAlias || ofAlias.size >= MAX_REMEMBERED) {
    if (columnRefs.size >= MAX_REMEMBERED) columnRefs.clear();
    columnRefs.set(tableAlias, (ofAlias = new Map<string, string>()));
  }
  ofAlias.set(column, ref);
  return ref;
}
const columnRefs = new Map<string, Map<string, string>>();
const MAX_REMEMBERED = 4096;

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

  /**
   * What an agreement's row filter writes its values with: literals ({@link LiteralParams}), never
   * parameters. PostgreSQL uses a partial index only where it can prove its predicate from the
   * statement's constants: with the row filter's values bound as parameters, only a plan made for
   * them could use the population's indexes (the registry's `populationIndexes`), so every execution
   * would be planned again; written in, a generic plan uses them too, and a prepared statement keeps
   * it. A COPY, which takes no parameters at all, reads the caller's values as settings, which are
   * no constants either. The row filter is the agreement's, validated and typed when it was
   * approved; the caller's values, and the HMAC key, are never written in.
   */
  rowFilterParams(): SqlParams {
    return new LiteralParams();
  }
}

/** The prefix of the settings that carry a COPY's values, local to its transaction. */
const SETTING = 'broker_export.p';

/**
 * Whether `text` is a placeholder of this module for a value of `pgType`: `$n::type` from
 * {@link SqlParams}, or a setting's read-back from {@link SettingParams}. What a caller checks before
 * writing an expression around a value that must never be text (the HMAC key).
 */
export function isPlaceholder(text: string, pgType: 'bytea'): boolean {
  const [bound, setting] = PLACEHOLDERS[pgType];
  return bound.test(text) || setting.test(text);
}

/** A placeholder of each kind for a value of the type: `$n::type`, and a setting's read-back. */
const PLACEHOLDERS: Record<'bytea', [RegExp, RegExp]> = {
  bytea: [
    /^\$[1-9][0-9]*::bytea$/,
    new RegExp(`^\\(SELECT current_setting\\('${SETTING.replace('.', '\\.')}[1-9][0-9]*'\\)::bytea\\)$`),
  ],
};

/**
 * The parameters of a statement that takes none (COPY). Each value is set as a setting of the
 * transaction (`set_config(name, $n, true)`, gone at its end) by one statement with ordinary bind
 * parameters, and read back by the COPY once, as an init plan cast to its type, which is how
 * PostgreSQL reads a bind parameter sent as text. As with {@link SqlParams}, no value, the HMAC key
 * least of all, is ever written into a statement's text.
 */
export class SettingParams extends SqlParams {
  override add(value: unknown, pgType?: string): string {
    if (pgType === undefined) throw new Error('a COPY parameter needs its type');
    super.add(value === null || value === undefined ? null : settingText(value), pgType);
    const read = `(SELECT current_setting('${SETTING}${this.values.length}')::${pgType})`;
    // An array is cast once more: `= ANY((SELECT …))` would compare with each row of the subquery
    // (text = text[]), where `= ANY(<array>)` compares with each element, as for a bind parameter.
    return pgType.endsWith('[]') ? `${read}::${pgType}` : read;
  }

  /**
   * The statement that sets every value, and, when given, the statement's time limit (a literal of
   * the caller's, such as `'1h'`).
   */
  settings(statementTimeout?: string): { text: string; values: unknown[] } {
    const sets = this.values.map((_, i) => `set_config('${SETTING}${i + 1}', $${i + 1}::text, true)`);
    if (statementTimeout !== undefined) {
      if (!/^\d+(ms|s|min|h)$/.test(statementTimeout)) throw new Error('a time limit such as 30s or 1h');
      sets.push(`set_config('statement_timeout', '${statementTimeout}', true)`);
    }
    if (!sets.length) return { text: 'SELECT', values: [] };
    return { text: `SELECT ${sets.join(', ')}`, values: this.values };
  }
}

/**
 * A value as the text PostgreSQL reads for its type: what `pg` sends for a bind parameter (arrays as
 * array literals, dates as timestamps), except bytes, which `pg` sends in binary and a setting holds
 * as bytea's hex text.
 */
function settingText(value: unknown): unknown {
  return Buffer.isBuffer(value) ? `\\x${value.toString('hex')}` : value;
}

/**
 * Values written as literals, for the SQL texts that cannot take parameters: an agreement's row
 * filter in the predicate of a partial index of a population (DDL, built by the broker, never a
 * statement a request runs), and the data plane's check of the caller's key in the statement that
 * opens its snapshot (sent with its BEGIN, in one round trip). Each literal is cast to the type its parameter would
 * have, so that PostgreSQL finds the predicate equal, constant for constant, to the conditions a
 * statement binds and uses the index. Text goes through pg's `escapeLiteral`; lists are array
 * literals; bytes (the HMAC key) are refused: no key is ever written into a catalog object.
 */
export class LiteralParams extends SqlParams {
  override rowFilterParams(): SqlParams {
    return this;
  }

  override add(value: unknown, pgType?: string): string {
    if (pgType === undefined || !PARAM_TYPES.has(pgType) || pgType.startsWith('bytea')) {
      throw new Error(`no literal of type ${String(pgType)}`);
    }
    const list = pgType.endsWith('[]');
    if (list !== Array.isArray(value))
      throw new Error(`a literal of type ${pgType} needs ${list ? 'a list' : 'a value'}`);
    const text = list
      ? `{${(value as unknown[]).map((v) => `"${scalarText(v).replace(/[\\"]/g, '\\$&')}"`).join(',')}}`
      : scalarText(value);
    return `${escapeLiteral(text)}::${pgType}`;
  }
}

/** A row filter's scalar as PostgreSQL reads it for its type (a string, a finite number, a boolean). */
function scalarText(value: unknown): string {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new Error('a literal cannot hold a NUL character');
    return value;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  throw new Error('a literal is a string, a finite number or a boolean');
}
