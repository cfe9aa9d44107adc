import fc from 'fast-check';
import type { FieldDefinition, FieldType } from '@broker/registry';
import { compileGrant } from './compiled-grant';
import { MAX_WHERE_DEPTH } from './data-where';
import { MAX_ROW_FILTER_DEPTH } from './row-filter';
import { PolicyError } from './policy-error';
import {
  type CompiledGrant,
  type DataWhere,
  type DatasetShape,
  FieldTransform,
  type FieldTypeName,
  GrantAccess,
  type ReleasedField,
  type RowFilter,
} from './policy.types';
import { releasedField } from './released-field';
import { LiteralParams, SqlParams, columnRef, quoteIdent } from './sql-builder';
import { orderBySql } from './keyset';
import {
  releasedExpression,
  releasedJsonExpression,
  rowFilterSql,
  selectListSql,
  whereSql,
} from './sql-compiler';

const field = (name: string, type: FieldTypeName) =>
  ({
    name,
    type: type as FieldType,
    classification: 'SENSITIVE',
    identity: null,
    required: false,
    description: null,
  }) as FieldDefinition;

const TYPES: Record<string, FieldTypeName> = {
  s: 'STRING',
  i: 'INTEGER',
  f: 'FLOAT',
  b: 'BOOLEAN',
  d: 'DATE',
  t: 'DATETIME',
};
const dataset: DatasetShape = {
  id: 'ds',
  slug: 'records_all',
  typeName: 'RecordsAll',
  keyField: 'k',
  subjectField: null,
  fields: [field('k', 'INTEGER'), ...Object.entries(TYPES).map(([name, type]) => field(name, type))],
};

const grantOf = (transforms: Record<string, FieldTransform>, linkage = false): CompiledGrant =>
  compileGrant(
    {
      datasetId: 'ds',
      access: GrantAccess.ROWS,
      fields: Object.entries(transforms).map(([name, transform]) => ({ name, transform })),
      rowFilter: null,
      requireConsent: false,
      minCellSize: 11,
      linkage,
    },
    dataset,
  );
const RAW = grantOf(Object.fromEntries(Object.keys(TYPES).map((n) => [n, FieldTransform.RAW])));
const HASH = grantOf(Object.fromEntries(Object.keys(TYPES).map((n) => [n, FieldTransform.HASH])));
const GENERALIZE = grantOf({
  s: FieldTransform.GENERALIZE,
  i: FieldTransform.GENERALIZE,
  f: FieldTransform.GENERALIZE,
  b: FieldTransform.RAW,
  d: FieldTransform.GENERALIZE,
  t: FieldTransform.GENERALIZE,
});
const KEY = '$1::bytea';
const rf = (name: string, transform: FieldTransform) =>
  releasedField(
    dataset.fields.find((f) => f.name === name)!,
    transform,
  );

const policyError = (code: 'FORBIDDEN' | 'BAD_USER_INPUT') => expect.objectContaining({ code }) as Error;

describe('SqlParams and quoteIdent', () => {
  it('numbers placeholders and casts only to listed types', () => {
    const params = new SqlParams(['already']);
    expect(params.add('x')).toBe('$2');
    expect(params.add(5, 'integer')).toBe('$3::integer');
    expect(params.add([1.5], 'double precision[]')).toBe('$4::double precision[]');
    expect(params.values).toEqual(['already', 'x', 5, [1.5]]);
    for (const type of ['integer) OR (TRUE', 'text; DROP TABLE x', 'text --', 'integer or true', 'Text']) {
      expect(() => params.add(1, type)).toThrow();
    }
    expect(params.values).toHaveLength(4);
  });

  it('quotes identifiers, doubling quotes, and refuses NUL', () => {
    expect(quoteIdent('jail_bookings')).toBe('"jail_bookings"');
    expect(quoteIdent('a"; DROP TABLE x; --')).toBe('"a""; DROP TABLE x; --"');
    expect(() => quoteIdent('a\u0000b')).toThrow();
  });
});

describe('releasedExpression', () => {
  it.each([
    ['s', 'RAW', '"r"."s"'],
    ['t', 'RAW', '"r"."t"'],
    ['s', 'HASH', `encode(hmac(convert_to("r"."s", 'UTF8'), $1::bytea, 'sha256'), 'hex')`],
    ['i', 'HASH', `encode(hmac(convert_to("r"."i"::text, 'UTF8'), $1::bytea, 'sha256'), 'hex')`],
    ['f', 'HASH', `encode(hmac(convert_to("r"."f"::text, 'UTF8'), $1::bytea, 'sha256'), 'hex')`],
    [
      'b',
      'HASH',
      `encode(hmac(convert_to((CASE WHEN "r"."b" THEN 'true' WHEN NOT "r"."b" THEN 'false' END), 'UTF8'), $1::bytea, 'sha256'), 'hex')`,
    ],
    [
      'd',
      'HASH',
      `encode(hmac(convert_to((CASE WHEN extract(year from "r"."d") BETWEEN 1 AND 9999 THEN to_char("r"."d"::timestamp, 'YYYY-MM-DD') END), 'UTF8'), $1::bytea, 'sha256'), 'hex')`,
    ],
    [
      't',
      'HASH',
      `encode(hmac(convert_to((CASE WHEN extract(year from "r"."t" AT TIME ZONE 'UTC') BETWEEN 1 AND 9999 THEN to_char("r"."t" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END), 'UTF8'), $1::bytea, 'sha256'), 'hex')`,
    ],
    ['s', 'GENERALIZE', 'left("r"."s", 3)'],
    ['d', 'GENERALIZE', `(CASE WHEN isfinite("r"."d") THEN extract(year from "r"."d")::int END)`],
    [
      't',
      'GENERALIZE',
      `(CASE WHEN isfinite("r"."t") THEN extract(year from "r"."t" AT TIME ZONE 'UTC')::int END)`,
    ],
    ['i', 'GENERALIZE', '(CASE WHEN "r"."i" >= -2147483645 THEN "r"."i" - ("r"."i" % 5 + 5) % 5 END)'],
    [
      'f',
      'GENERALIZE',
      '(CASE WHEN "r"."f" >= 0 AND "r"."f" < 5 THEN 0 WHEN "r"."f" >= -5 AND "r"."f" < 0 THEN -5 WHEN "r"."f" >= -2147483645 AND "r"."f" < 2147483650 THEN (floor("r"."f" / 5::double precision) * 5)::int END)',
    ],
  ] as const)('%s under %s is %s', (name, transform, sql) => {
    expect(releasedExpression(rf(name, transform as FieldTransform), dataset, 'r', KEY)).toBe(sql);
  });

  it('renders Date and DateTime for the response as text in UTC', () => {
    expect(releasedJsonExpression(rf('d', FieldTransform.RAW), dataset, 'r', KEY)).toBe(
      `(CASE WHEN extract(year from "r"."d") BETWEEN 1 AND 9999 THEN to_char("r"."d"::timestamp, 'YYYY-MM-DD') END)`,
    );
    expect(releasedJsonExpression(rf('t', FieldTransform.RAW), dataset, 'r', KEY)).toBe(
      `(CASE WHEN extract(year from "r"."t" AT TIME ZONE 'UTC') BETWEEN 1 AND 9999 THEN to_char("r"."t" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') END)`,
    );
    expect(releasedJsonExpression(rf('i', FieldTransform.RAW), dataset, 'r', KEY)).toBe('"r"."i"');
  });

  it('quotes the table alias', () => {
    expect(releasedExpression(rf('s', FieldTransform.RAW), dataset, 'r"x', KEY)).toBe('"r""x"."s"');
  });

  it('takes the HMAC key only as a bytea parameter', () => {
    for (const key of ['$1', "'secret'", '$1::text', '$0::bytea', '$1::bytea, 1) --']) {
      expect(() => releasedExpression(rf('s', FieldTransform.HASH), dataset, 'r', key)).toThrow();
    }
  });

  it('refuses a released field that does not follow the transform table', () => {
    const forged: ReleasedField[] = [
      { name: 's', source: 's', transform: FieldTransform.HASH, type: 'String' },
      { name: 'i_band', source: 'i', transform: FieldTransform.RAW, type: 'Int' },
      { name: 'x', source: 'x', transform: FieldTransform.RAW, type: 'String' },
      { name: 'i', source: 'i', transform: FieldTransform.RAW, type: 'String' },
      { name: 'b_band', source: 'b', transform: FieldTransform.GENERALIZE, type: 'Int' },
    ];
    for (const f of forged) {
      expect(() => releasedExpression(f, dataset, 'r', KEY)).toThrow(policyError('FORBIDDEN'));
    }
  });
});

describe('checks remembered per policy object', () => {
  it('checks a released field again for another shape, and never remembers a failed check', () => {
    const released = rf('i', FieldTransform.GENERALIZE);
    expect(releasedExpression(released, dataset, 'r', KEY)).toContain('"r"."i"');
    // The same grant against a shape whose field changed type: a new shape object, checked afresh.
    const changed: DatasetShape = {
      ...dataset,
      fields: dataset.fields.map((f) => (f.name === 'i' ? field('i', 'BOOLEAN') : f)),
    };
    for (let i = 0; i < 2; i++) {
      expect(() => releasedExpression(released, changed, 'r', KEY)).toThrow(policyError('FORBIDDEN'));
    }
    const renamed: ReleasedField = { ...released, name: 'i_year' };
    for (let i = 0; i < 2; i++) {
      expect(() => releasedExpression(renamed, dataset, 'r', KEY)).toThrow(policyError('FORBIDDEN'));
    }
    // And the remembered check still answers the first shape as before.
    expect(releasedExpression(released, dataset, 'r', KEY)).toContain('"r"."i"');
  });

  it('parses a row filter once per shape, and refuses one that does not parse every time', () => {
    const filter: RowFilter = { i: { $gte: 18 } };
    const first = new SqlParams();
    const second = new SqlParams();
    expect(rowFilterSql(filter, dataset, 't', first)).toBe(rowFilterSql(filter, dataset, 't', second));
    expect(second.values).toEqual(first.values);
    // Another shape, where the filter's field is text: parsed against it, not taken from the first.
    const text: DatasetShape = {
      ...dataset,
      fields: dataset.fields.map((f) => (f.name === 'i' ? field('i', 'STRING') : f)),
    };
    for (let i = 0; i < 2; i++) {
      expect(() => rowFilterSql(filter, text, 't', new SqlParams())).toThrow(policyError('FORBIDDEN'));
    }
    expect(rowFilterSql(filter, dataset, 'u', new SqlParams())).toContain('"u"."i"');
  });

  it('quotes every column reference as quoteIdent does, remembered or not', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (alias, column) => {
        fc.pre(!alias.includes('\u0000') && !column.includes('\u0000'));
        const expected = `${quoteIdent(alias)}.${quoteIdent(column)}`;
        expect(columnRef(alias, column)).toBe(expected);
        expect(columnRef(alias, column)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
    expect(() => columnRef('t', 'a\u0000b')).toThrow();
  });
});

describe('rowFilterSql', () => {
  it('compiles conditions on raw columns with typed parameters', () => {
    const params = new SqlParams();
    const sql = rowFilterSql(
      {
        s: { $gte: 'M', $ne: "O'Brien" },
        d: '2024-02-29',
        $or: [{ i: { $in: [1, 2] } }, { t: { $nin: ['2024-05-01T00:00:00Z'] } }, { b: false }],
      },
      dataset,
      'r',
      params,
    );
    expect(sql).toBe(
      '((("r"."s" COLLATE "C" >= $1::text) AND ("r"."s" COLLATE "C" <> $2::text)) AND ("r"."d" = $3::date) AND' +
        ' (("r"."i" = ANY($4::integer[])) OR ("r"."t" <> ALL($5::timestamptz[])) OR ("r"."b" = $6::boolean)))',
    );
    expect(params.values).toEqual([
      'M',
      "O'Brien",
      '2024-02-29',
      [1, 2],
      ['2024-05-01T00:00:00.000Z'],
      false,
    ]);
  });

  it('writes the same filter with its values as literals, once per filter, shape and alias', () => {
    const filter: RowFilter = { s: { $gte: 'M', $ne: "O'Brien" }, d: '2024-02-29', i: { $in: [1, 2] } };
    const literal = rowFilterSql(filter, dataset, 'r', new LiteralParams());
    expect(literal).toBe(
      `((("r"."s" COLLATE "C" >= 'M'::text) AND ("r"."s" COLLATE "C" <> 'O''Brien'::text)) AND` +
        ` ("r"."d" = '2024-02-29'::date) AND ("r"."i" = ANY('{"1","2"}'::integer[])))`,
    );
    // Remembered: the same text again, another alias its own, and parameters never remembered.
    expect(rowFilterSql(filter, dataset, 'r', new LiteralParams())).toBe(literal);
    expect(rowFilterSql(filter, dataset, 'q', new LiteralParams())).toBe(literal.replaceAll('"r".', '"q".'));
    const params = new SqlParams();
    expect(rowFilterSql(filter, dataset, 'r', params)).toContain('$1::text');
    expect(params.values).toHaveLength(4);
  });

  it('fails closed on a filter that does not fit the dataset', () => {
    for (const filter of [{ gone: 1 }, { i: 'x' }, { $where: 'TRUE' }, {}, { s: null }] as RowFilter[]) {
      expect(() => rowFilterSql(filter, dataset, 'r', new SqlParams())).toThrow(policyError('FORBIDDEN'));
    }
  });
});

describe('whereSql', () => {
  it('compares released values, never raw ones', () => {
    const params = new SqlParams();
    const key = params.add(Buffer.alloc(32), 'bytea');
    const sql = whereSql(
      { s_hash: { eq: 'ab' }, d_hash: { in: [] }, not: { i_hash: { isNull: true } } },
      HASH,
      dataset,
      'r',
      params,
      key,
    );
    expect(sql).toContain(
      `(encode(hmac(convert_to("r"."s", 'UTF8'), $1::bytea, 'sha256'), 'hex') COLLATE "C" = $2::text)`,
    );
    expect(sql).toContain(`(CASE WHEN encode(hmac(convert_to((CASE WHEN extract(year from "r"."d")`);
    expect(sql).toContain('IS NOT NULL THEN FALSE END)');
    expect(sql).toContain('(NOT (encode(hmac(convert_to("r"."i"::text');
    expect(params.values.slice(1)).toEqual(['ab']);

    const generalized = new SqlParams();
    expect(whereSql({ d_year: { gte: 1990, lt: 2000 } }, GENERALIZE, dataset, 'r', generalized, KEY)).toBe(
      `(("r"."d" >= $1::date AND isfinite("r"."d")) AND ("r"."d" < $2::date AND isfinite("r"."d")))`,
    );
    // At the top level a year comparison is written as the range of dates it is exactly equivalent
    // to (true for the same rows; the year of an infinite date is null), so an index serves it.
    expect(generalized.values).toEqual(['1990-01-01', '2000-01-01']);
    // Under `or` and `not` nothing is added: a bound there could change the answer.
    const none = new SqlParams();
    expect(whereSql({ not: { d_year: { eq: 1990 } } }, GENERALIZE, dataset, 'r', none, KEY)).not.toContain(
      '::date',
    );
  });

  it('types parameters by released type and orders text in code point order', () => {
    const params = new SqlParams();
    const sql = whereSql(
      {
        s: { gt: 'a', in: ['x', 'y'] },
        i: { nin: [] },
        f: { lte: 1.5 },
        b: { eq: true },
        d: { eq: new Date('2024-02-29T00:00:00Z') },
        t: { gte: '2024-05-01T15:45:00+02:00' },
        or: [],
        and: [],
      },
      RAW,
      dataset,
      'r',
      params,
      KEY,
    );
    expect(sql).toBe(
      '((("r"."s" COLLATE "C" > $1::text) AND ("r"."s" COLLATE "C" = ANY($2::text[]))) AND' +
        ' (CASE WHEN "r"."i" IS NOT NULL THEN TRUE END) AND ("r"."f" <= $3::double precision) AND' +
        ' ("r"."b" = $4::boolean) AND ("r"."d" = $5::date) AND ("r"."t" >= $6::timestamptz) AND FALSE AND TRUE)',
    );
    expect(params.values).toEqual(['a', ['x', 'y'], 1.5, true, '2024-02-29', '2024-05-01T13:45:00.000Z']);
    expect(whereSql({}, RAW, dataset, 'r', new SqlParams(), KEY)).toBe('TRUE');
  });

  it.each([
    ['a raw field whose hash is released', { s: { eq: 'x' } }, HASH],
    ['a hash of a raw grant', { s_hash: { eq: 'x' } }, RAW],
    ['a raw date whose year is released', { d: { isNull: true } }, GENERALIZE],
    ['an unknown name', { ssn: { eq: 'x' } }, RAW],
    ['the record key, never granted', { k: { eq: 1 } }, RAW],
    ['__proto__', JSON.parse('{"__proto__": {"eq": 1}}'), RAW],
    ['constructor', { constructor: { eq: 1 } }, RAW],
    ['toString', { toString: { eq: 1 } }, RAW],
    ['a nested unreleased name', { or: [{ s: { eq: 'x' } }, { not: { ssn: { isNull: true } } }] }, RAW],
    ['an unreleased name with a null value', { ssn: null }, RAW],
    ['an unreleased name with a malformed filter', { ssn: { like: '%' } }, RAW],
    ['personKey without linkage', { personKey: { eq: 'x' } }, RAW],
  ] as const)('is FORBIDDEN on %s', (_what, where, grant) => {
    expect(() => whereSql(where as DataWhere, grant, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
  });

  it.each([
    ['an unknown operator', { s: { like: '%' } }],
    ['a Boolean range', { b: { gt: false } }],
    ['a Boolean list', { b: { in: [true] } }],
    ['null for eq', { s: { eq: null } }],
    ['null for a filter', { s: null }],
    ['null in a list', { i: { in: [1, null] } }],
    ['null for and', { and: null }],
    ['a string for an Int', { i: { eq: '1' } }],
    ['a fraction for an Int', { i: { eq: 1.5 } }],
    ['an Int beyond 32 bits', { i: { gt: 2 ** 31 } }],
    ['Infinity for a Float', { f: { lt: Infinity } }],
    ['a number for a String', { s: { eq: 1 } }],
    ['a NUL in a String', { s: { eq: 'a\u0000' } }],
    ['a lone surrogate', { s: { eq: '\udc00' } }],
    ['an impossible Date', { d: { eq: '2023-02-29' } }],
    ['a Date that is not midnight', { d: { eq: new Date('2024-01-01T12:00:00Z') } }],
    ['a DateTime in words', { t: { eq: 'now' } }],
    ['isNull that is not a boolean', { s: { isNull: 'yes' } }],
    ['a list that is not a list', { s: { in: 'x' } }],
    ['a filter that is not an object', { s: 'x' }],
    ['and that is not a list', { and: { s: { eq: 'x' } } }],
    ['not that is a list', { not: [] }],
  ])('is BAD_USER_INPUT on %s', (_what, where) => {
    expect(() => whereSql(where as DataWhere, RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
  });

  it('refuses filters too deep, too large, or with lists too long', () => {
    let deep: DataWhere = { s: { eq: 'x' } };
    for (let i = 0; i < 20; i++) deep = { not: deep };
    expect(() => whereSql(deep, RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
    const wide = { or: Array.from({ length: 2000 }, () => ({ i: { eq: 1 } })) };
    expect(() => whereSql(wide, RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
    const long = { i: { in: Array.from({ length: 10_001 }, (_, n) => n) } };
    expect(() => whereSql(long, RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
  });

  it('filters on personKey through the expression the data plane supplies, where linkage is granted', () => {
    const linked = grantOf({ s: FieldTransform.RAW }, true);
    const params = new SqlParams();
    expect(
      whereSql({ personKey: { eq: 'pk' } }, linked, dataset, 'r', params, KEY, { personKey: 'p."key"' }),
    ).toBe('((p."key") COLLATE "C" = $1::text)');
    expect(() => whereSql({ personKey: { eq: 'pk' } }, linked, dataset, 'r', params, KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
  });

  it('adds the lookup of a HASH name beside its equality or in list required of every row, and nowhere else', () => {
    const hashed = grantOf({ s: FieldTransform.HASH, i: FieldTransform.RAW });
    const asked: string[] = [];
    const options = {
      hashAmong: (released: { name: string }, values: () => string) => {
        asked.push(released.name);
        return released.name === 's_hash' ? `lookup(${values()})` : null;
      },
    };
    const sql = (where: DataWhere) => {
      const params = new SqlParams();
      return { text: whereSql(where, hashed, dataset, 'r', params, KEY, options), values: params.values };
    };
    const eq = sql({ s_hash: { eq: 'h' } });
    expect(eq.text).toMatch(/ = \$1::text\) AND lookup\(\$2::text\[\]\)\)$/);
    expect(eq.values).toEqual(['h', ['h']]);
    expect(sql({ and: [{ s_hash: { in: ['a', 'b'] } }, { i: { eq: 1 } }] }).text).toMatch(
      / AND lookup\(\$\d+::text\[\]\)\)$/,
    );
    // Where the data plane has no table, nothing is added, not even the list's parameter.
    const none = { hashAmong: () => null };
    const params = new SqlParams();
    whereSql({ s_hash: { eq: 'h' } }, hashed, dataset, 'r', params, KEY, none);
    expect(params.values.filter((v) => Array.isArray(v))).toEqual([]);
    // Under or and not, for neq, nin, ranges and isNull, the records with those hashes are not all
    // the answer may hold: nothing is added, and no table is asked for.
    asked.length = 0;
    for (const where of [
      { or: [{ s_hash: { eq: 'h' } }, { i: { eq: 1 } }] },
      { not: { s_hash: { eq: 'h' } } },
      { s_hash: { neq: 'h' } },
      { s_hash: { nin: ['h'] } },
      { s_hash: { gt: 'h' } },
      { s_hash: { isNull: false } },
      { s_hash: { in: [] } },
    ] as DataWhere[]) {
      expect(sql(where).text).not.toContain('lookup');
    }
    expect(asked).toEqual([]);
  });

  it("adds the persons' records beside a personKey equality or in list required of every row, and nowhere else", () => {
    const linked = grantOf({ s: FieldTransform.RAW }, true);
    const options = { personKey: 'p."key"', personKeyAmong: (keys: string) => `among(${keys})` };
    const sql = (where: DataWhere) => {
      const params = new SqlParams();
      return { text: whereSql(where, linked, dataset, 'r', params, KEY, options), values: params.values };
    };
    expect(sql({ personKey: { eq: 'pk' } })).toEqual({
      text: '(((p."key") COLLATE "C" = $1::text) AND among($2::text[]))',
      values: ['pk', ['pk']],
    });
    expect(sql({ and: [{ personKey: { in: ['a', 'b'] } }, { s: { eq: 'x' } }] }).text).toBe(
      '((((p."key") COLLATE "C" = ANY($1::text[])) AND ("r"."s" COLLATE "C" = $2::text)) AND among($3::text[]))',
    );
    // Under or and not, for neq, nin and isNull, the records of those persons are not all the answer
    // may hold: nothing is added.
    for (const where of [
      { or: [{ personKey: { eq: 'pk' } }, { s: { eq: 'x' } }] },
      { not: { personKey: { eq: 'pk' } } },
      { personKey: { neq: 'pk' } },
      { personKey: { nin: ['pk'] } },
      { personKey: { isNull: false } },
      { personKey: { in: [] } },
    ] as DataWhere[]) {
      expect(sql(where).text).not.toContain('among');
    }
  });

  it('refuses a grant of another dataset', () => {
    expect(() => whereSql({}, RAW, { ...dataset, id: 'other' }, 'r', new SqlParams(), KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
  });
});

describe('orderBySql and selectListSql', () => {
  it('orders on released values with explicit null placement', () => {
    expect(
      orderBySql(
        [
          { field: 's_prefix', direction: 'ASC' },
          { field: 'i_band', direction: 'DESC' },
        ],
        GENERALIZE,
        dataset,
        'r',
        new SqlParams(),
        KEY,
      ),
    ).toBe(
      `left("r"."s", 3) COLLATE "C" ASC NULLS LAST, (CASE WHEN "r"."i" >= -2147483645 THEN "r"."i" - ("r"."i" % 5 + 5) % 5 END) DESC NULLS FIRST`,
    );
    expect(orderBySql([], RAW, dataset, 'r', new SqlParams(), KEY)).toBe('');
  });

  it('refuses names not released, bad directions and long lists', () => {
    const order = (field: string, direction = 'ASC') => [{ field, direction }] as never;
    expect(() => orderBySql(order('s'), HASH, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
    expect(() => orderBySql(order('k'), RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
    expect(() => orderBySql(order('s', 'SIDEWAYS'), RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
    expect(() =>
      orderBySql(order('s', 'ASC; DROP TABLE x'), RAW, dataset, 'r', new SqlParams(), KEY),
    ).toThrow(policyError('BAD_USER_INPUT'));
    const many = Array.from({ length: 21 }, () => ({ field: 's', direction: 'ASC' as const }));
    expect(() => orderBySql(many, RAW, dataset, 'r', new SqlParams(), KEY)).toThrow(
      policyError('BAD_USER_INPUT'),
    );
  });

  it('selects released values under their released names', () => {
    expect(selectListSql(['d_year', 's_prefix', 'd_year'], GENERALIZE, dataset, 'r', KEY)).toBe(
      `(CASE WHEN isfinite("r"."d") THEN extract(year from "r"."d")::int END) AS "d_year", left("r"."s", 3) AS "s_prefix"`,
    );
    expect(() => selectListSql(['d'], GENERALIZE, dataset, 'r', KEY)).toThrow(policyError('FORBIDDEN'));
    expect(() => selectListSql(['personKey'], GENERALIZE, dataset, 'r', KEY)).toThrow(
      policyError('FORBIDDEN'),
    );
  });
});

describe('no value is ever written into SQL text', () => {
  const FRAGMENTS = [
    "'",
    '"',
    '--',
    ';',
    '$1',
    '$$',
    '\\',
    '/*',
    '*/',
    ') OR TRUE --',
    "' OR '1'='1",
    'DROP TABLE x',
    '\n',
  ];
  // A marker makes a leak unmistakable: short values like 'a' occur in any SQL text by chance.
  const hostile = fc
    .array(fc.oneof(fc.constantFrom(...FRAGMENTS), fc.string({ unit: 'grapheme', maxLength: 8 })), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => `§§${parts.join('')}`)
    .filter((s) => !s.includes('\u0000'));

  const valueOf = (type: FieldTypeName): fc.Arbitrary<unknown> => {
    switch (type) {
      case 'STRING':
        return hostile;
      case 'INTEGER':
        return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
      case 'FLOAT':
        return fc.double({ noNaN: true, noDefaultInfinity: true });
      case 'BOOLEAN':
        return fc.boolean();
      case 'DATE':
        return fc.constantFrom('2024-02-29', '0001-01-01', '9999-12-31');
      case 'DATETIME':
        return fc.constantFrom('2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59+05:30');
    }
  };

  const condition = (name: string, type: FieldTypeName): fc.Arbitrary<RowFilter> => {
    const ops = type === 'BOOLEAN' ? ['$eq', '$ne'] : ['$eq', '$ne', '$gt', '$gte', '$lt', '$lte'];
    return fc.oneof(
      valueOf(type).map((v) => ({ [name]: v }) as RowFilter),
      fc.tuple(fc.constantFrom(...ops), valueOf(type)).map(([op, v]) => ({ [name]: { [op]: v } })),
      fc
        .tuple(fc.constantFrom('$in', '$nin'), fc.array(valueOf(type), { minLength: 1, maxLength: 4 }))
        .map(([op, vs]) => ({ [name]: { [op]: vs } })),
    );
  };
  // Filters stay within the nesting the policy accepts (MAX_ROW_FILTER_DEPTH): deeper ones are refused.
  const rowFilter: fc.Arbitrary<RowFilter> = fc.letrec<{ node: RowFilter }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true, maxDepth: MAX_ROW_FILTER_DEPTH - 2 },
      fc.constantFrom(...Object.entries(TYPES)).chain(([name, type]) => condition(name, type)),
      fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((children) => ({ $and: children })),
      fc.array(tie('node'), { minLength: 1, maxLength: 3 }).map((children) => ({ $or: children })),
    ),
  })).node;

  const releasedValueOf = (type: string): fc.Arbitrary<unknown> =>
    type === 'String'
      ? hostile
      : type === 'Int'
        ? fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
        : type === 'Float'
          ? fc.double({ noNaN: true, noDefaultInfinity: true })
          : type === 'Boolean'
            ? fc.boolean()
            : type === 'Date'
              ? fc.constant('2024-02-29')
              : fc.constant('2024-02-29T23:59:59.999Z');
  const dataWhere = (grant: CompiledGrant): fc.Arbitrary<DataWhere> => {
    const fields = [...grant.released.values()];
    const leaf = fc.constantFrom(...fields).chain((f) => {
      const ops = f.type === 'Boolean' ? ['eq'] : ['eq', 'neq', 'gt', 'gte', 'lt', 'lte'];
      return fc.oneof(
        fc
          .tuple(fc.constantFrom(...ops), releasedValueOf(f.type))
          .map(([op, v]) => ({ [f.name]: { [op]: v } })),
        f.type === 'Boolean'
          ? fc.constant({ [f.name]: { isNull: true } })
          : fc
              .tuple(fc.constantFrom('in', 'nin'), fc.array(releasedValueOf(f.type), { maxLength: 4 }))
              .map(([op, vs]) => ({ [f.name]: { [op]: vs } })),
      );
    });
    return fc.letrec<{ node: DataWhere }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true, maxDepth: MAX_WHERE_DEPTH - 2 },
        leaf as fc.Arbitrary<DataWhere>,
        fc.array(tie('node'), { maxLength: 3 }).map((children) => ({ and: children })),
        fc.array(tie('node'), { maxLength: 3 }).map((children) => ({ or: children })),
        tie('node').map((child) => ({ not: child })),
      ),
    })).node;
  };

  /** Every string inside a filter's values (not its keys). */
  const stringsIn = (value: unknown, into: string[] = [], isKey = false): string[] => {
    if (typeof value === 'string' && !isKey) into.push(value);
    else if (Array.isArray(value)) value.forEach((v) => stringsIn(v, into));
    else if (value && typeof value === 'object') Object.values(value).forEach((v) => stringsIn(v, into));
    return into;
  };
  const flat = (values: unknown[]): unknown[] => values.flatMap((v) => (Array.isArray(v) ? flat(v) : [v]));

  // The only literals the compiler writes itself; anything else quoted would be a leak.
  const OWN_LITERALS = [`'UTF8'`, `'sha256'`, `'hex'`, `'YYYY-MM-DD'`, `'UTC'`, `'true'`, `'false'`];
  const OWN_LITERAL_DATETIME = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
  const IDENTIFIERS = /"(?:[a-z]+|C)"/g;
  // PostgreSQL's starts-with operator, which a 3-character prefix's implied bound uses.
  const OWN_OPERATORS = [' ^@ '];
  const assertOnlyOwnText = (sql: string) => {
    let rest = sql.split(OWN_LITERAL_DATETIME).join(' ');
    for (const operator of OWN_OPERATORS) rest = rest.split(operator).join(' ');
    for (const literal of OWN_LITERALS) rest = rest.split(literal).join(' ');
    rest = rest.replace(IDENTIFIERS, ' ');
    expect(rest).not.toMatch(/['"\\;]|--|\/\*|\$\$/);
    expect(rest).toMatch(/^[A-Za-z0-9_$:().,<>=\-*/%+[\]\s]*$/);
  };

  it('row filters: values only in parameters, SQL text only the compiler’s own', () => {
    fc.assert(
      fc.property(rowFilter, (filter) => {
        const params = new SqlParams();
        const sql = rowFilterSql(filter, dataset, 'r', params);
        const values = flat(params.values);
        for (const s of stringsIn(filter)) {
          if (s.startsWith('§§')) {
            expect(sql).not.toContain(s);
            expect(values).toContain(s);
          }
        }
        assertOnlyOwnText(sql);
      }),
      { numRuns: 300 },
    );
  });

  it('data filters and ordering: values only in parameters, SQL text only the compiler’s own', () => {
    fc.assert(
      fc.property(
        fc
          .constantFrom(RAW, HASH, GENERALIZE)
          .chain((grant) => fc.tuple(fc.constant(grant), dataWhere(grant))),
        ([grant, where]) => {
          const params = new SqlParams();
          const key = params.add(Buffer.alloc(32), 'bytea');
          const sql = whereSql(where, grant, dataset, 'r', params, key);
          const values = flat(params.values);
          for (const s of stringsIn(where)) {
            expect(sql).not.toContain(s);
            if (s.startsWith('§§')) expect(values).toContain(s);
          }
          assertOnlyOwnText(sql);
          const order = [...grant.released.keys()].map((field) => ({ field, direction: 'DESC' as const }));
          assertOnlyOwnText(orderBySql(order, grant, dataset, 'r', params, key));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hostile names are refused, never written', () => {
    fc.assert(
      fc.property(hostile, fc.constantFrom(RAW, HASH, GENERALIZE), (name, grant) => {
        expect(() => whereSql({ [name]: { eq: 1 } }, grant, dataset, 'r', new SqlParams(), KEY)).toThrow(
          PolicyError,
        );
        expect(() =>
          orderBySql([{ field: name, direction: 'ASC' }], grant, dataset, 'r', new SqlParams(), KEY),
        ).toThrow(PolicyError);
        expect(() => selectListSql([name], grant, dataset, 'r', KEY)).toThrow(PolicyError);
      }),
      { numRuns: 200 },
    );
  });
});
