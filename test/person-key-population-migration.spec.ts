import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { PersonKeyPopulation1766820000000 } from '../libs/core/src/database/migrations/1766820000000-person-key-population';

/** The migration that gives each personKey lookup table its grant and population, and its `down`. */
describe('migration person-key-population', () => {
  let url: string;
  let client: Client;
  const migration = new PersonKeyPopulation1766820000000();
  const runner = {
    query: async (sql: string): Promise<unknown[]> => (await client.query<Record<string, unknown>>(sql)).rows,
  } as unknown as QueryRunner;
  const columns = async () =>
    (
      await client.query<{ column_name: string }>(
        `SELECT column_name FROM information_schema.columns
          WHERE table_name = 'person_key_scope' AND column_name IN ('agreement_id', 'population', 'row_filter')
          ORDER BY 1`,
      )
    ).rows.map((r) => r.column_name);
  const unique = async () =>
    (
      await client.query<{ def: string }>(
        `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
          WHERE conrelid = 'person_key_scope'::regclass AND contype = 'u'`,
      )
    ).rows.map((r) => r.def);
  /** A table as the release before populations built it, with one entry (foreign keys off). */
  const everyRecord = async () => {
    await client.query(`SET session_replication_role = replica`);
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO person_key_scope (run_id, scope, dataset_id)
       VALUES (gen_random_uuid(), 'agency/PURPOSE', gen_random_uuid()) RETURNING id`,
    );
    await client.query(
      `INSERT INTO person_key (scope_id, record_key, person_id, prefix) VALUES ($1, 'K', 1, 1)`,
      [rows[0].id],
    );
    await client.query(`RESET session_replication_role`);
  };
  const count = async (table: string) =>
    (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n;

  beforeAll(async () => {
    url = await createTestDatabase('person_key_population_migration');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it('drops the tables of every linked record and keys a table by its grant; down puts the old key back', async () => {
    expect(await columns()).toEqual(['agreement_id', 'population', 'row_filter']);
    expect(await unique()).toEqual(['UNIQUE (run_id, agreement_id, scope, dataset_id)']);
    await migration.down(runner);
    expect(await columns()).toEqual([]);
    expect(await unique()).toEqual(['UNIQUE (run_id, scope, dataset_id)']);
    await everyRecord();
    await migration.up(runner);
    // A table of every linked record names no grant: it goes, with its entries.
    expect([await count('person_key_scope'), await count('person_key')]).toEqual([0, 0]);
    expect(await columns()).toEqual(['agreement_id', 'population', 'row_filter']);
    expect(await unique()).toEqual(['UNIQUE (run_id, agreement_id, scope, dataset_id)']);
    // A broker of the release before writes neither the grant nor the population: it builds nothing.
    await client.query(`SET session_replication_role = replica`);
    await expect(
      client.query(
        `INSERT INTO person_key_scope (run_id, scope, dataset_id) VALUES (gen_random_uuid(), 'a/P', gen_random_uuid())`,
      ),
    ).rejects.toThrow(/not-null/);
    await client.query(`RESET session_replication_role`);
  });
});
