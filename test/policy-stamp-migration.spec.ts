import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { PolicyStampPerAgency1766870000000 } from '../libs/core/src/database/migrations/1766870000000-policy-stamp-per-agency';

/** The migration that gives every recipient agency its own policy stamp, and its `down`. */
describe('migration policy-stamp-per-agency', () => {
  let url: string;
  let client: Client;
  const migration = new PolicyStampPerAgency1766870000000();
  const runner = () => {
    const query = async (sql: string): Promise<unknown[]> =>
      (await client.query<Record<string, unknown>>(sql)).rows;
    return { query } as unknown as QueryRunner;
  };
  const agency = async (name: string) =>
    (await client.query<{ id: string }>(`INSERT INTO agency (name) VALUES ($1) RETURNING id`, [name])).rows[0]
      .id;
  const stamps = async () =>
    (
      await client.query<{ name: string; stamp: string }>(
        `SELECT a.name, p.stamp::text AS stamp FROM agency a LEFT JOIN agency_policy_stamp p ON p.agency_id = a.id
          ORDER BY a.name`,
      )
    ).rows;

  beforeAll(async () => {
    url = await createTestDatabase('policy_stamp_migration');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it("gives every agency a row at the county's stamp, and every agency created later its own", async () => {
    await migration.down(runner());
    expect((await client.query(`SELECT to_regclass('agency_policy_stamp') AS t`)).rows).toEqual([
      { t: null },
    ]);
    // Agencies of the earlier release, and a county stamp that has moved.
    await agency('Before A');
    await agency('Before B');
    await client.query(`UPDATE policy_stamp SET stamp = 7 WHERE id = 1`);

    await migration.up(runner());
    expect(await stamps()).toEqual([
      { name: 'Before A', stamp: '7' },
      { name: 'Before B', stamp: '7' },
    ]);
    await client.query(`UPDATE policy_stamp SET stamp = 9 WHERE id = 1`);
    const later = await agency('Later');
    expect(await stamps()).toEqual([
      { name: 'Before A', stamp: '7' },
      { name: 'Before B', stamp: '7' },
      { name: 'Later', stamp: '9' },
    ]);
    // A stamp never goes below zero, and never outlives its agency.
    await expect(
      client.query(`UPDATE agency_policy_stamp SET stamp = -1 WHERE agency_id = $1`, [later]),
    ).rejects.toMatchObject({ code: '23514' });
    await client.query(`DELETE FROM agency WHERE id = $1`, [later]);
    expect(
      (await client.query(`SELECT 1 FROM agency_policy_stamp WHERE agency_id = $1`, [later])).rows,
    ).toEqual([]);

    // Down leaves the agencies, and creating one no longer needs the table.
    await migration.down(runner());
    await agency('After down');
    expect((await client.query(`SELECT count(*)::int AS n FROM agency`)).rows).toEqual([{ n: 3 }]);
    await migration.up(runner());
    expect((await stamps()).map((r) => r.stamp)).toEqual(['9', '9', '9']);
  });
});
