/**
 * An export's COPY reads its values back from settings of its transaction (SettingParams), where
 * every other statement gets them as bind parameters (SqlParams). Differential, against real
 * PostgreSQL, with fast-check: for every parameter type the broker uses, a value read back from its
 * setting is the very value the same value bound as a parameter is (or both are refused).
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { PARAM_TYPES, SettingParams, SqlParams, isPlaceholder } from '@broker/policy';
import { EXPORT_STATEMENT_TIMEOUT } from './export-sql';

const noNul = (s: string) => !s.includes('\u0000');
const isoDate = fc
  .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const SCALARS: Record<string, fc.Arbitrary<unknown>> = {
  text: fc.string({ unit: 'binary', maxLength: 40 }).filter(noNul),
  integer: fc.oneof(fc.integer(), fc.maxSafeInteger()),
  bigint: fc.maxSafeInteger(),
  'double precision': fc.double(),
  numeric: fc.double({ noNaN: true, noDefaultInfinity: true }),
  boolean: fc.boolean(),
  date: isoDate.map((s) => s.slice(0, 10)),
  timestamptz: isoDate,
  bytea: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  uuid: fc.uuid(),
  jsonb: fc.json().filter(noNul),
};

/** The text PostgreSQL gives of values read one way or the other, or the refusal's code. */
async function read(client: Client, text: string, values: unknown[]): Promise<string> {
  try {
    const { rows } = await client.query<Record<string, string | null>>(text, values);
    return `value ${JSON.stringify(rows[0])}`;
  } catch (error) {
    return `refused ${(error as { code?: string }).code}`;
  }
}

describe('export: values through settings equal bound parameters', () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({
      connectionString: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    });
    await client.connect();
  });
  afterAll(() => client.end());

  it('covers every parameter type there is', () => {
    const covered = Object.keys(SCALARS).flatMap((t) => [t, `${t}[]`]);
    expect(covered.sort()).toEqual([...PARAM_TYPES].sort());
  });

  it.each([...PARAM_TYPES])('reads %s back as its bind parameter', async (pgType) => {
    const scalar = pgType.endsWith('[]') ? pgType.slice(0, -2) : pgType;
    const arbitrary = pgType.endsWith('[]')
      ? fc.array(fc.option(SCALARS[scalar], { nil: null, freq: 5 }), { maxLength: 5 })
      : SCALARS[scalar];
    await fc.assert(
      fc.asyncProperty(fc.array(arbitrary, { minLength: 1, maxLength: 3 }), async (values) => {
        const bound = new SqlParams();
        const set = new SettingParams();
        const b = values.map((value, i) => `(${bound.add(value, pgType)})::text AS v${i}`);
        const s = values.map((value, i) => `(${set.add(value, pgType)})::text AS v${i}`);
        const viaBind = await read(client, `SELECT ${b.join(', ')}`, bound.values);
        await client.query('BEGIN');
        try {
          const { text, values: settingValues } = set.settings();
          await client.query(text, settingValues);
          const viaSetting = await read(client, `SELECT ${s.join(', ')}`, []);
          expect(viaSetting).toBe(viaBind);
        } finally {
          await client.query('ROLLBACK');
        }
      }),
      { numRuns: 40 },
    );
  });

  it.each([...PARAM_TYPES].filter((t) => t.endsWith('[]')))(
    'serves %s to = ANY and <> ALL as its bind parameter does (the filters in and nin)',
    async (pgType) => {
      const scalar = pgType.slice(0, -2);
      const element = SCALARS[scalar];
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.option(element, { nil: null, freq: 5 }), { maxLength: 5 }),
          element,
          async (list, probe) => {
            const sql = (params: SqlParams) => {
              const one = params.add(probe, scalar);
              const many = params.add(list, pgType);
              return `SELECT (${one} = ANY(${many}))::text AS any, (${one} <> ALL(${many}))::text AS all`;
            };
            const bound = new SqlParams();
            const viaBind = await read(client, sql(bound), bound.values);
            const set = new SettingParams();
            const text = sql(set);
            await client.query('BEGIN');
            try {
              const settings = set.settings();
              await client.query(settings.text, settings.values);
              expect(await read(client, text, [])).toBe(viaBind);
            } finally {
              await client.query('ROLLBACK');
            }
          },
        ),
        { numRuns: 25 },
      );
    },
  );

  it('never writes a value into the text, and limits the COPY by its own time', async () => {
    const set = new SettingParams();
    const key = Buffer.from('secret-hmac-key-0123456789');
    const placeholder = set.add(key, 'bytea');
    set.add("O'Brien", 'text');
    const { text, values } = set.settings(EXPORT_STATEMENT_TIMEOUT);
    expect(placeholder).toBe(`(SELECT current_setting('broker_export.p1')::bytea)`);
    expect(text).not.toContain('secret');
    expect(text).not.toContain(key.toString('hex'));
    expect(text).not.toContain('Brien');
    expect(values).toEqual([`\\x${key.toString('hex')}`, "O'Brien"]);
    await client.query('BEGIN');
    try {
      await client.query(text, values);
      const { rows } = await client.query<{ timeout: string; key: Buffer }>(
        `SELECT current_setting('statement_timeout') AS timeout, ${placeholder} AS key`,
      );
      expect(rows[0].key.equals(key)).toBe(true);
      expect(rows[0].timeout).toBe(EXPORT_STATEMENT_TIMEOUT);
    } finally {
      await client.query('ROLLBACK');
    }
    // Settings of the transaction end with it.
    const { rows } = await client.query<{ v: string | null }>(
      `SELECT current_setting('broker_export.p1', true) AS v`,
    );
    expect(rows[0].v === null || rows[0].v === '').toBe(true);
  });

  it('writes placeholders that the HMAC expression accepts, and nothing else passes for one', () => {
    const bound = new SqlParams().add(Buffer.from('k'), 'bytea');
    const set = new SettingParams().add(Buffer.from('k'), 'bytea');
    expect(isPlaceholder(bound, 'bytea')).toBe(true);
    expect(isPlaceholder(set, 'bytea')).toBe(true);
    for (const forged of [
      `'\\x6b'::bytea`,
      `$1::text`,
      `(SELECT current_setting('broker_export.p1')::text)`,
      `(SELECT current_setting('other.p1')::bytea)`,
      `(SELECT current_setting('broker_exportXp1')::bytea)`,
      `${set} || $2::bytea`,
    ]) {
      expect(isPlaceholder(forged, 'bytea')).toBe(false);
    }
  });

  it('refuses a parameter without a type, or of a type not on the list', () => {
    const set = new SettingParams();
    expect(() => set.add(1)).toThrow('needs its type');
    expect(() => set.add(1, 'int; DROP TABLE x')).toThrow('unsupported parameter type');
    expect(() => set.settings("1h'); DROP TABLE x; --")).toThrow('a time limit');
  });
});
