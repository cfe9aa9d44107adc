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
 * PostgreSQL 15 spends several microseconds a value building JSON (it looks up each value's type
 * again on every row); this is a string concatenation.
 */
export class NodeJsonWriter {
  /** `{"key":`, then `,"key":`: each key's JSON is written once, not once per row. */
  private readonly prefixes: string[];
  private readonly kinds: ('number' | 'float' | 'boolean' | 'string')[];
  private readonly names: string[];

  constructor(columns: readonly { key: string; type: ReleasedType }[]) {
    this.prefixes = columns.map((c, i) => `${i ? ',' : '{'}${JSON.stringify(c.key)}:`);
    this.kinds = columns.map((c) => KIND[c.type]);
    this.names = columns.map((_, i) => nodeColumn(i));
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
        }
      }
      json += '}';
    }
    return { json: json + close, unrepresentable };
  }
}

/** What JSON.stringify writes otherwise than as is: a quote, a backslash, a control character, a surrogate. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

const KIND: Record<ReleasedType, 'number' | 'float' | 'boolean' | 'string'> = {
  Int: 'number',
  Float: 'float',
  Boolean: 'boolean',
  String: 'string',
  Date: 'string',
  DateTime: 'string',
};
