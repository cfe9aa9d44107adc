/**
 * A page's nodes are written as JSON in Node from PostgreSQL's text of each value (NodeJsonWriter),
 * where PostgreSQL's json_build_object wrote them before. Differential, against real PostgreSQL,
 * with fast-check: for random nodes of every released type (strings with quotes, backslashes, control
 * characters and astral characters; integers up to bigint; floats with NaN, ±Infinity, subnormals and
 * exponents; booleans; nulls), the writer writes each value byte for byte as PostgreSQL's JSON of it,
 * the node is json_build_object's once parsed, and it flags exactly the nodes with a Float GraphQL
 * cannot represent; for any instant and date PostgreSQL holds, it writes what the response's form
 * (to_char, releasedJsonExpression) writes, from the seconds since the epoch a page selects.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import {
  type DatasetShape,
  FieldTransform,
  type ReleasedType,
  releasedJsonExpression,
  releasedTextExpression,
} from '@broker/policy';
import { pgInstantText } from '@broker/testing';
import { NodeJsonWriter, isoDate, isoInstant, nodeColumn } from './node-json';

interface Column {
  type: ReleasedType;
  pgType: string;
  value: unknown;
}

const noNul = (s: string) => !s.includes('\u0000');
const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null, freq: 6 });

/** A released value of each type, as the SQL type its expression has. */
const COLUMN: fc.Arbitrary<Column> = fc.oneof(
  nullable(fc.string({ unit: 'binary', maxLength: 30 }).filter(noNul)).map((value) => ({
    type: 'String' as const,
    pgType: 'text',
    value,
  })),
  nullable(
    fc.string({
      unit: fc.constantFrom(
        '"',
        '\\',
        '\n',
        '\t',
        '\b',
        '\f',
        '\r',
        '\u0001',
        '\u001f',
        '\u007f',
        '\u2028',
        'é',
        '😀',
        '/',
      ),
      maxLength: 8,
    }),
  ).map((value) => ({ type: 'String' as const, pgType: 'text', value })),
  nullable(fc.integer()).map((value) => ({ type: 'Int' as const, pgType: 'integer', value })),
  nullable(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String)).map((value) => ({
    type: 'Int' as const,
    pgType: 'bigint',
    value,
  })),
  nullable(fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, 1e21, 1.5e-7, 5e-324, -0))).map(
    (value) => ({ type: 'Float' as const, pgType: 'double precision', value }),
  ),
  nullable(fc.boolean()).map((value) => ({ type: 'Boolean' as const, pgType: 'boolean', value })),
  // (Dates and instants are selected as seconds since the epoch: their own test is below.)
);

const NODE = fc
  .uniqueArray(fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,12}$/), { maxLength: 12 })
  .chain((keys) =>
    fc.tuple(fc.constant(keys), fc.array(COLUMN, { minLength: keys.length, maxLength: keys.length })),
  );

describe('NodeJsonWriter writes what json_build_object writes', () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({
      connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      // As the readers' connections are (Database), whatever the server's default.
      options: '-c DateStyle=ISO',
    });
    await client.connect();
  });
  afterAll(() => client.end());

  /**
   * The node as PostgreSQL writes it: json_build_object's JSON (which spaces its separators), the
   * same without the spaces (each value's own JSON, to_json, joined: the bytes the writer must
   * write), and each value's text as a page's statement selects it.
   */
  async function fromPostgres(keys: string[], columns: Column[]) {
    const values = columns.map((c) => c.value);
    const typed = columns.map((c, i) => `$${i + 1}::${c.pgType}`);
    const pairs = keys.map((k, i) => `'${k}', ${typed[i]}`).join(', ');
    const each = typed.length
      ? typed.map(
          (t, i) => `to_json('${keys[i]}'::text)::text || ':' || coalesce(to_json(${t})::text, 'null')`,
        )
      : [`''`];
    const texts = typed.map((t, i) => `, (${t})::text AS ${nodeColumn(i)}`).join('');
    const { rows } = await client.query<Record<string, string | null>>(
      `SELECT json_build_object(${pairs})::text AS built, '{' || ${each.join(` || ',' || `)} || '}' AS expected${texts}`,
      values,
    );
    return rows[0];
  }

  it('for random nodes of every type', async () => {
    await fc.assert(
      fc.asyncProperty(NODE, async ([keys, columns]) => {
        const row = await fromPostgres(keys, columns);
        const written = new NodeJsonWriter(keys.map((key, i) => ({ key, type: columns[i].type }))).write(row);
        expect(written.json).toBe(row.expected);
        // The same value as json_build_object's, once parsed: what a client reads.
        expect(JSON.parse(written.json)).toEqual(JSON.parse(row.built!));
        const odd = columns.some(
          (c) => c.type === 'Float' && typeof c.value === 'number' && !Number.isFinite(c.value),
        );
        expect(written.unrepresentable).toBe(odd);
      }),
      { numRuns: 300 },
    );
  });

  it('writes the values of one chosen node exactly', async () => {
    // (An oracle that fails: a writer that spaced its separators, or wrote NaN bare, would differ.)
    const columns: Column[] = [
      { type: 'String', pgType: 'text', value: 'a "quoted"\\ line\nnext\u0001 😀' },
      { type: 'Int', pgType: 'bigint', value: '9223372036854775807' },
      { type: 'Float', pgType: 'double precision', value: 1e21 },
      { type: 'Float', pgType: 'double precision', value: NaN },
      { type: 'Boolean', pgType: 'boolean', value: false },
      { type: 'DateTime', pgType: 'text', value: null },
    ];
    const keys = ['s', 'i', 'f', 'nan', 'b', 'at'];
    const row = await fromPostgres(keys, columns);
    const written = new NodeJsonWriter(keys.map((key, i) => ({ key, type: columns[i].type }))).write(row);
    expect(written).toEqual({
      json: '{"s":"a \\"quoted\\"\\\\ line\\nnext\\u0001 😀","i":9223372036854775807,"f":1e+21,"nan":"NaN","b":false,"at":null}',
      unrepresentable: true,
    });
    expect(written.json).toBe(row.expected);
  });

  it('writes a string as JSON.stringify does, lone surrogates included (its fast path for strings that need no escape)', () => {
    const unit = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom('"', '\\', '\u0000', '\u001f', ' '),
    );
    const writer = new NodeJsonWriter([{ key: 'k', type: 'String' }]);
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 12 }), (value) => {
        expect(writer.write({ [nodeColumn(0)]: value }).json).toBe(`{"k":${JSON.stringify(value)}}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('writes a page of nodes as the JSON array of each node, up to the count asked', () => {
    const writer = new NodeJsonWriter([
      { key: 'a', type: 'Float' },
      { key: 'b', type: 'String' },
    ]);
    const row = (a: string | null, b: string | null) => ({ [nodeColumn(0)]: a, [nodeColumn(1)]: b });
    const rows = [row('1.5', 'x'), row('NaN', null), row(null, 'q"')];
    expect(writer.writeNodes(rows, 1)).toEqual({ json: '[{"a":1.5,"b":"x"}]', unrepresentable: false });
    expect(writer.writeNodes(rows, 3)).toEqual({
      json: '[{"a":1.5,"b":"x"},{"a":"NaN","b":null},{"a":null,"b":"q\\""}]',
      unrepresentable: true,
    });
    expect(writer.writeNodes(rows, 0)).toEqual({ json: '[]', unrepresentable: false });
    expect(new NodeJsonWriter([]).writeNodes(rows, 2).json).toBe('[{},{}]');
  });

  describe('Date and DateTime, selected as their text in DateStyle ISO', () => {
    const shape = {
      id: 'd',
      slug: 'd',
      typeName: 'D',
      keyField: 'd',
      subjectField: null,
      fields: [
        { name: 'd', type: 'DATE', classification: 'NON_SENSITIVE' },
        { name: 't', type: 'DATETIME', classification: 'NON_SENSITIVE' },
      ],
    } as unknown as DatasetShape;
    const released = (name: string, type: 'Date' | 'DateTime') => ({
      name,
      source: name,
      transform: FieldTransform.RAW,
      type,
    });
    const value = pgInstantText;

    it('writes what the response form (to_char) writes, for any instant and date', async () => {
      const key = '$9::bytea';
      const date = released('d', 'Date');
      const time = released('t', 'DateTime');
      const sql = `SELECT ${releasedJsonExpression(date, shape, 'r', key)} AS dj, ${releasedTextExpression(date, shape, 'r', key)} AS ${nodeColumn(0)},
                          ${releasedJsonExpression(time, shape, 'r', key)} AS tj, ${releasedTextExpression(time, shape, 'r', key)} AS ${nodeColumn(1)}
                     FROM (SELECT $1::timestamptz::date AS d, $1::timestamptz AS t) r`;
      const writer = new NodeJsonWriter([
        { key: 'd', type: 'Date' },
        { key: 't', type: 'DateTime' },
      ]);
      await fc.assert(
        fc.asyncProperty(value, async (text) => {
          let row: Record<string, string | null>;
          try {
            [row] = (
              await client.query<Record<string, string | null>>(sql.replace('$9::bytea', "'\\x00'::bytea"), [
                text,
              ])
            ).rows;
          } catch (error) {
            // Outside PostgreSQL's range: nothing to compare.
            expect((error as { code?: string }).code).toBe('22008');
            return;
          }
          expect(writer.write(row).json).toBe(
            `{"d":${JSON.stringify(row.dj)},"t":${JSON.stringify(row.tj)}}`,
          );
        }),
        { numRuns: 1000 },
      );
    });

    it('cuts microseconds, as to_char does, and writes nothing outside years 1 to 9999', () => {
      expect(isoInstant('1970-01-01 00:00:01.999999')).toBe('1970-01-01T00:00:01.999Z');
      expect(isoInstant('1969-12-31 23:59:58.5')).toBe('1969-12-31T23:59:58.500Z');
      expect(isoInstant('0001-01-01 00:00:00')).toBe('0001-01-01T00:00:00.000Z');
      expect(isoInstant('0001-12-31 23:59:59.999 BC')).toBeNull();
      expect(isoInstant('9999-12-31 23:59:59.999999')).toBe('9999-12-31T23:59:59.999Z');
      expect(isoInstant('10000-01-01 00:00:00')).toBeNull();
      expect(isoInstant('infinity')).toBeNull();
      expect(isoInstant('-infinity')).toBeNull();
      expect(isoDate('0001-01-01')).toBe('0001-01-01');
      expect(isoDate('0001-01-01 BC')).toBeNull();
      expect(isoDate('10000-01-01')).toBeNull();
      expect(isoDate('infinity')).toBeNull();
    });
  });

  it('writes an empty node as {}', () => {
    expect(new NodeJsonWriter([]).write({})).toEqual({ json: '{}', unrepresentable: false });
  });
});
