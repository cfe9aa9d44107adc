/**
 * A page's cursor keeps each ordering value as text (keptText), written on the readers' connections
 * in DateStyle ISO, and reads it back (readBack) as a bind parameter on any connection. Against real
 * PostgreSQL, with fast-check: for any date and instant PostgreSQL holds (BC, past year 9999,
 * ±infinity, every microsecond) and other values, the text read back under another DateStyle and time
 * zone is the very value it was written from.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { pgDateText, pgInstantText } from '@broker/testing';
import { readBack } from './keyset';
import { keptText } from './sql-compiler';

const VALUES: [string, fc.Arbitrary<string>][] = [
  ['timestamptz', pgInstantText],
  ['date', pgDateText],
  ['double precision', fc.double().map(String)],
  ['integer', fc.integer().map(String)],
  ['text', fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\u0000'))],
];

describe('keyset positions: kept as text in DateStyle ISO, read back alike under any DateStyle', () => {
  let writer: Client;
  let reader: Client;

  beforeAll(async () => {
    const url = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    // As the readers' connections write (Database sets DateStyle ISO), in an odd time zone.
    writer = new Client({ connectionString: url, options: '-c DateStyle=ISO -c TimeZone=Pacific/Chatham' });
    // A cursor is read back on any connection: here one that writes dates otherwise.
    reader = new Client({
      connectionString: url,
      options: '-c DateStyle=SQL,DMY -c TimeZone=America/St_Johns',
    });
    await writer.connect();
    await reader.connect();
  });
  afterAll(async () => {
    await writer.end();
    await reader.end();
  });

  it.each(VALUES)('%s', async (pgType, arbitrary) => {
    await fc.assert(
      fc.asyncProperty(arbitrary, async (input) => {
        let kept: string;
        try {
          [{ kept }] = (
            await writer.query<{ kept: string }>(`SELECT ${keptText('$1::' + pgType, pgType)} AS kept`, [
              input,
            ])
          ).rows;
        } catch (error) {
          // Outside PostgreSQL's range: nothing kept, nothing to read back.
          expect((error as { code?: string }).code).toMatch(/^22/);
          return;
        }
        const [{ same }] = (
          await reader.query<{ same: boolean }>(
            `SELECT ${readBack(pgType)('$1')} IS NOT DISTINCT FROM $2::${pgType} AS same`,
            [kept, input],
          )
        ).rows;
        expect({ input, kept, same }).toEqual({ input, kept, same: true });
      }),
      { numRuns: 300 },
    );
  });
});
