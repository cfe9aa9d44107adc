import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase, MOVE_POLICY_STAMP_SQL } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { PolicyStampPerAgency1766870000000 } from '../libs/core/src/database/migrations/1766870000000-policy-stamp-per-agency';

/**
 * The migration that gives every recipient agency its own policy stamp, moved by the database with
 * the change of an agreement that moves it, whoever writes it (a broker of the earlier release,
 * during a rolling upgrade, writes the agreement and moves the county's stamp only), and its `down`.
 */
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

  const one = async <T>(sql: string, values: unknown[] = []) =>
    (await client.query<T & Record<string, unknown>>(sql, values)).rows[0];
  /** Every agency's stamp by name, and the county's. */
  const byName = async (): Promise<Record<string, number>> => {
    const rows = (
      await client.query<{ name: string; stamp: string }>(
        `SELECT a.name, p.stamp::text AS stamp FROM agency a JOIN agency_policy_stamp p ON p.agency_id = a.id`,
      )
    ).rows;
    const county = (await one<{ stamp: string }>(`SELECT stamp::text AS stamp FROM policy_stamp`)).stamp;
    return { ...Object.fromEntries(rows.map((r) => [r.name, Number(r.stamp)])), county: Number(county) };
  };

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

  it("moves the recipient's stamp and the county's with a version coming into force and a revocation, and with nothing else", async () => {
    const provider = await agency('P');
    const recipient = await agency('R');
    const other = await agency('O');
    const { id: steward } = await one<{ id: string }>(
      `INSERT INTO app_user (agency_id, email, role) VALUES ($1, 'steward@example.org', 'STEWARD') RETURNING id`,
      [provider],
    );
    const { id: agreement } = await one<{ id: string }>(
      `INSERT INTO agreement (provider_agency_id, recipient_agency_id, current_version, created_by)
       VALUES ($1, $2, 1, $3) RETURNING id`,
      [provider, recipient, steward],
    );
    const update = (set: string) => client.query(`UPDATE agreement SET ${set} WHERE id = $1`, [agreement]);
    const start = await byName();
    const moved = async () => {
      const now = await byName();
      return Object.fromEntries(['P', 'R', 'O', 'county'].map((k) => [k, now[k] - start[k]]));
    };

    // As the earlier release writes them: the agreement, then the county's stamp itself.
    await update(`in_force_version = 1`);
    await client.query(`UPDATE policy_stamp SET stamp = stamp + 1 WHERE id = 1`);
    expect(await moved()).toEqual({ P: 0, R: 1, O: 0, county: 2 });
    // What changes what nobody may read moves nothing: an amendment proposed, the same value again.
    await update(`current_version = 2`);
    await update(`in_force_version = 1`);
    expect(await moved()).toEqual({ P: 0, R: 1, O: 0, county: 2 });
    await update(`in_force_version = 2`);
    expect(await moved()).toEqual({ P: 0, R: 2, O: 0, county: 3 });
    await update(`revoked_at = now(), revoked_by = '${steward}', revoked_by_agency_id = '${provider}'`);
    expect(await moved()).toEqual({ P: 0, R: 3, O: 0, county: 4 });
    // A recipient changed (the database written by hand) moves both recipients' stamps.
    await update(`recipient_agency_id = '${other}'`);
    expect(await moved()).toEqual({ P: 0, R: 4, O: 1, county: 5 });
    // By hand, one agency's.
    await client.query(MOVE_POLICY_STAMP_SQL, [other]);
    expect(await moved()).toEqual({ P: 0, R: 4, O: 2, county: 6 });

    // A change for an agency without its row is refused, and writes nothing.
    await client.query(`DELETE FROM agency_policy_stamp WHERE agency_id = $1`, [other]);
    await expect(update(`in_force_version = 1`)).rejects.toThrow(/has no policy stamp/);
    expect(
      (await one<{ v: number }>(`SELECT in_force_version AS v FROM agreement WHERE id = $1`, [agreement])).v,
    ).toBe(2);
    await client.query(`INSERT INTO agency_policy_stamp (agency_id) VALUES ($1)`, [other]);

    // Down: the agreement's changes move nothing (there are no stamps); up again, they do.
    await migration.down(runner());
    await update(`in_force_version = 1`);
    await migration.up(runner());
    const again = await byName();
    expect(again.O).toBe(again.county);
    await update(`in_force_version = 2`);
    expect(await byName()).toMatchObject({ O: again.county + 1, county: again.county + 1 });
  });

  it('gives its row to an agency created while it runs, before its trigger or after', async () => {
    await migration.down(runner());
    const [during, after] = [new Client({ connectionString: url }), new Client({ connectionString: url })];
    await during.connect();
    await after.connect();
    try {
      const waitingOnLock = async () => {
        for (;;) {
          const { rows } = await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
          );
          if (rows[0].n > 0) return;
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      // An agency being created when the migration starts: its trigger waits for it to commit.
      await during.query('BEGIN');
      await during.query(`INSERT INTO agency (name) VALUES ('Created during')`);
      const migrating = new Client({ connectionString: url });
      await migrating.connect();
      try {
        const run = (async () => {
          await migrating.query('BEGIN');
          await migration.up({
            query: async (sql: string) => (await migrating.query<Record<string, unknown>>(sql)).rows,
          } as unknown as QueryRunner);
        })();
        await waitingOnLock();
        await during.query('COMMIT');
        await run;
        // One created once the trigger is there, before the migration commits: it waits, and fires it.
        const created = after.query(`INSERT INTO agency (name) VALUES ('Created after')`);
        await waitingOnLock();
        await migrating.query('COMMIT');
        await created;
      } finally {
        await migrating.end();
      }
      const stamps = await byName();
      expect(stamps['Created during']).toBe(stamps.county);
      expect(stamps['Created after']).toBe(stamps.county);
      const { n } = await one<{ n: number }>(
        `SELECT count(*)::int AS n FROM agency a LEFT JOIN agency_policy_stamp p ON p.agency_id = a.id WHERE p.agency_id IS NULL`,
      );
      expect(n).toBe(0);
    } finally {
      await during.end();
      await after.end();
    }
  });
});
