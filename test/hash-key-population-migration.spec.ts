import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { HashKeyPopulation1766700000000 } from '../libs/core/src/database/migrations/1766700000000-hash-key-population';

/** The migration that names the population a HASH lookup table files, and its `down`. */
describe('migration hash-key-population', () => {
  let url: string;
  let client: Client;
  const migration = new HashKeyPopulation1766700000000();
  const runner = {
    query: async (sql: string): Promise<unknown[]> => (await client.query<Record<string, unknown>>(sql)).rows,
  } as unknown as QueryRunner;
  const columns = async () =>
    (
      await client.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
          WHERE table_name = 'hash_key_scope' AND column_name IN ('population', 'row_filter') ORDER BY 1`,
      )
    ).rows.map((r) => r.column_name);
  /** A table's scope and one entry. Its agreement and dataset are left out (foreign keys off). */
  const scope = async (population: string) => {
    await client.query(`SET session_replication_role = replica`);
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO hash_key_scope (agreement_id, dataset_id, field, records, distinct_values, useful, serves, population)
       VALUES (gen_random_uuid(), gen_random_uuid(), 'name', 1, 1, true, true, $1) RETURNING id`,
      [population],
    );
    await client.query(`INSERT INTO hash_key (scope_id, prefix, rid) VALUES ($1, 1, 1)`, [rows[0].id]);
    await client.query(`RESET session_replication_role`);
    return rows[0].id;
  };

  beforeAll(async () => {
    url = await createTestDatabase('hash_population_migration');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it('adds the population, every earlier table filing every record; down drops the tables of a population', async () => {
    expect(await columns()).toEqual(['population', 'row_filter']);
    const everyRecord = await scope('');
    await scope('4a6fad65d65da41b920d85085466da5a');
    await migration.down(runner);
    expect(await columns()).toEqual([]);
    // Older releases read a table as filing every record: only such a table is kept.
    const { rows } = await client.query<{ id: number }>(`SELECT id FROM hash_key_scope ORDER BY id`);
    expect(rows).toEqual([{ id: everyRecord }]);
    const { rows: entries } = await client.query<{ scope_id: number }>(`SELECT scope_id FROM hash_key`);
    expect(entries).toEqual([{ scope_id: everyRecord }]);
    await migration.up(runner);
    expect(await columns()).toEqual(['population', 'row_filter']);
    const { rows: after } = await client.query<{ population: string; row_filter: unknown }>(
      `SELECT population, row_filter FROM hash_key_scope`,
    );
    expect(after).toEqual([{ population: '', row_filter: null }]);
  });
});
