/**
 * A perturbed aggregate's statement reads only the groups its answer lists (listedSql), and the
 * answer lists them by the same rule in Node (listed): against real PostgreSQL (pgcrypto's HMAC),
 * for any cell key, count, minimum and key of perturbations, the two decide alike.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Client } from 'pg';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { CELL_KEY_MODULUS, listed, listedSql, perturbationKey } from './cell-key';

describe('listing a perturbed group: listedSql in PostgreSQL decides as listed in Node', () => {
  let client: Client;
  let url: string;

  beforeAll(async () => {
    url = await createTestDatabase('cell_key');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await dropDatabase(url);
  });

  it('lists the same groups for any cell key, count, minimum and key (fast-check)', async () => {
    const text = `SELECT ${listedSql('g.n', 'g.ck', '$3::int', '$4::bytea')} AS listed
      FROM (SELECT $1::int AS n, ($2::bigint % ${CELL_KEY_MODULUS})::text AS ck) g`;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: CELL_KEY_MODULUS - 1 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async (ck, n, m, secret) => {
          const key = perturbationKey(Buffer.from(secret));
          const { rows } = await client.query<{ listed: boolean }>(text, [n, ck, m, key]);
          expect(rows[0].listed).toBe(listed(n, ck, m, key));
        },
      ),
      { numRuns: 400 },
    );
    // And at the minimum, where the draw decides, over many keys: both sides leave some out.
    const key = perturbationKey(randomBytes(32));
    const cks = Array.from({ length: 300 }, (_, i) => (i * 2654435761) % CELL_KEY_MODULUS);
    const { rows } = await client.query<{ ck: string; listed: boolean }>(
      `SELECT g.ck, ${listedSql('g.n', 'g.ck', '$2::int', '$3::bytea')} AS listed
         FROM (SELECT 11 AS n, c::text AS ck FROM unnest($1::bigint[]) c) g`,
      [cks, 11, key],
    );
    expect(rows.map((r) => r.listed)).toEqual(cks.map((ck) => listed(11, ck, 11, key)));
    expect(rows.filter((r) => !r.listed).length).toBeGreaterThan(30);
  });
});
