import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { LinkageTriggerRetention1766640000000 } from '../libs/core/src/database/migrations/1766640000000-linkage-trigger-retention';

/** The migration that lets a run record retention as what started it, and its `down`. */
describe('migration linkage-trigger-retention', () => {
  let url: string;
  let client: Client;
  const migration = new LinkageTriggerRetention1766640000000();
  const runner = () => {
    const query = async (sql: string): Promise<unknown[]> =>
      (await client.query<Record<string, unknown>>(sql)).rows;
    return { query } as unknown as QueryRunner;
  };
  const check = async () =>
    (
      await client.query<{ def: string; validated: boolean }>(
        `SELECT pg_get_constraintdef(oid) AS def, convalidated AS validated FROM pg_constraint
          WHERE conrelid = 'linkage_run'::regclass AND conname = 'linkage_run_trigger_check'`,
      )
    ).rows;
  const insert = (trigger: string) =>
    client.query(`INSERT INTO linkage_run (trigger, status) VALUES ($1, 'FAILED')`, [trigger]).then(
      () => 'inserted',
      (error: { code?: string }) => error.code,
    );

  beforeAll(async () => {
    url = await createTestDatabase('trigger_migration');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it('widens the check to RETENTION, and down narrows it again, keeping the runs retention started', async () => {
    const WIDE = `CHECK ((trigger = ANY (ARRAY['MANUAL'::text, 'INGESTION'::text, 'RETENTION'::text])))`;
    const NARROW = `CHECK ((trigger = ANY (ARRAY['MANUAL'::text, 'INGESTION'::text])))`;
    expect(await check()).toEqual([{ def: WIDE, validated: true }]);
    expect(await insert('RETENTION')).toBe('inserted');
    expect(await insert('SCHEDULE')).toBe('23514');

    // A run retention started is history: down keeps it, and refuses new ones.
    await migration.down(runner());
    expect(await check()).toEqual([{ def: `${NARROW} NOT VALID`, validated: false }]);
    expect(await insert('RETENTION')).toBe('23514');
    expect(await insert('INGESTION')).toBe('inserted');
    expect((await client.query(`SELECT trigger FROM linkage_run ORDER BY trigger`)).rows).toEqual([
      { trigger: 'INGESTION' },
      { trigger: 'RETENTION' },
    ]);

    await migration.up(runner());
    expect(await check()).toEqual([{ def: WIDE, validated: true }]);
    expect(await insert('RETENTION')).toBe('inserted');

    // Without such runs, down restores the linkage migration's check as it was, validated.
    await client.query(`DELETE FROM linkage_run WHERE trigger = 'RETENTION'`);
    await migration.down(runner());
    expect(await check()).toEqual([{ def: NARROW, validated: true }]);
    await migration.up(runner());
    expect(await check()).toEqual([{ def: WIDE, validated: true }]);
  });
});
