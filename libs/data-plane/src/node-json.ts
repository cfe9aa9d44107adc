import type { ReleasedType } from '@broker/policy';

/**
 * A row of a page's statement as it holds a node's values: column `c0`, `c1`, … for each released
 * value asked, as PostgreSQL's text of it (`<expression>::text`), or null.
 */
export type NodeTexts = Readonly<Record<string, string | null | undefined>>;

/** The column of a page's statement that holds its i-th value. */
export const nodeColumn = (i: number) => `c${i}`;

/** A Float that JSON has no number for, as PostgreSQL writes it. */
const NON_FINITE: ReadonlySet<string> = new Set(['NaN', 'Infinity', '-Infinity']);

/**
 * Writes nodes as JSON from PostgreSQL's text of their released values: each value byte for byte as
 * PostgreSQL's own JSON of it (`to_json`, what `json_build_object` writes, without the spaces
 * json_build_object puts around its separators; node-json.postgres.spec.ts proves it against
 * PostgreSQL): numbers and booleans as PostgreSQL writes them, a Float that is NaN or ±Infinity as a
 * string (and flagged: GraphQL's Float refuses it), null as null, everything else a JSON string.
 * PostgreSQL 15 spends half a microsecond a value building JSON (it looks up each value's type
 * again on every row); this is a string concatenation.
 */
export class NodeJsonWriter {
  /** `{"key":`, then `,"key":`: each key's JSON is written once, not once per row. */
  private readonly prefixes: string[];
  private readonly kinds: Kind[];
  private readonly names: string[];

  /**
   * `names`: the column of the statement's row that holds each value (by default `c0`, `c1`, …; a
   * statement may select a value once for several keys).
   */
  constructor(
    columns: readonly { key: string; type: ReleasedType }[],
    names: readonly string[] = columns.map((_, i) => nodeColumn(i)),
  ) {
    if (names.length !== columns.length) throw new Error('one column name per value');
    this.prefixes = columns.map((c, i) => `${i ? ',' : '{'}${JSON.stringify(c.key)}:`);
    this.kinds = columns.map((c) => KIND[c.type]);
    this.names = [...names];
  }

  /** The node's JSON, and whether a Float of it is NaN or ±Infinity. */
  write(row: NodeTexts): { json: string; unrepresentable: boolean } {
    return this.writeNodes([row], 1, '', '');
  }

  /**
   * The first `count` rows' nodes as a JSON array (`open` and `close` around them, `[` and `]` by
   * default), and whether a Float of one of them is NaN or ±Infinity: one string built as it goes,
   * with no object per row.
   */
  writeNodes(
    rows: readonly NodeTexts[],
    count: number,
    open = '[',
    close = ']',
  ): { json: string; unrepresentable: boolean } {
    const { prefixes, kinds, names } = this;
    let json = open;
    let unrepresentable = false;
    for (let r = 0; r < count; r++) {
      const row = rows[r];
      if (r) json += ',';
      if (!prefixes.length) json += '{';
      for (let i = 0; i < prefixes.length; i++) {
        const value = row[names[i]];
        json += prefixes[i];
        if (value === null || value === undefined) {
          json += 'null';
          continue;
        }
        switch (kinds[i]) {
          case 'number':
          case 'boolean':
            json += value;
            break;
          case 'float':
            if (NON_FINITE.has(value)) {
              unrepresentable = true;
              json += `"${value}"`;
            } else json += value;
            break;
          case 'string':
            // Most strings need no escape: quoted as they are, which is what JSON.stringify writes.
            json += NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
            break;
          case 'date':
          case 'instant': {
            const iso = kinds[i] === 'date' ? isoDate(value) : isoInstant(value);
            json += iso === null ? 'null' : `"${iso}"`;
            break;
          }
        }
      }
      json += '}';
    }
    return { json: json + close, unrepresentable };
  }
}

/**
 * What JSON.stringify may write otherwise than as is: a quote, a backslash, a control character
 * (U+0000 to U+001F escaped; U+007F to U+009F, also control characters, are not, and merely take the
 * slow path), a surrogate without its pair.
 */
const NEEDS_ESCAPE = /["\\\p{Cc}\p{Cs}]/u;

type Kind = 'number' | 'float' | 'boolean' | 'string' | 'date' | 'instant';

const KIND: Record<ReleasedType, Kind> = {
  Int: 'number',
  Float: 'float',
  Boolean: 'boolean',
  String: 'string',
  // Selected as PostgreSQL's text in DateStyle ISO (releasedTextExpression in libs/policy).
  Date: 'date',
  DateTime: 'instant',
};

/**
 * A DateTime as a page selects it (its UTC time as PostgreSQL writes a timestamp in DateStyle ISO:
 * 'YYYY-MM-DD HH:MI:SS', then '.' and up to six digits of the second when it has a fraction, ' BC'
 * before year 1, more digits past year 9999, or ±infinity) in ISO 8601 with milliseconds and 'Z'
 * (microseconds cut, as to_char's MS cuts them); null outside years 1 to 9999, as
 * releasedJsonExpression writes it.
 */
export function isoInstant(text: string): string | null {
  if (text.length < 19 || text.charCodeAt(4) !== 45 || text.endsWith(' BC')) return null;
  const ms = text.charCodeAt(19) === 46 ? `${text.slice(20, 23)}00`.slice(0, 3) : '000';
  return `${text.slice(0, 10)}T${text.slice(11, 19)}.${ms}Z`;
}

/** A Date as a page selects it (DateStyle ISO): as it is, or null outside years 1 to 9999. */
export function isoDate(text: string): string | null {
  return text.length === 10 && text.charCodeAt(4) === 45 ? text : null;
}
