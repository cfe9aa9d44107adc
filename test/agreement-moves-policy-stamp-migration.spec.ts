import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase, MOVE_POLICY_STAMP_SQL } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { AgreementMovesPolicyStamp1766890000000 } from '../libs/core/src/database/migrations/1766890000000-agreement-moves-policy-stamp';

/**
 * The migration that has the database move the policy stamps with the change of an agreement that
 * moves them, whoever writes it: a broker of the release before the stamps per agency, during a
 * rolling upgrade, writes the agreement and moves the county's stamp only.
 */
describe('migration agreement-moves-policy-stamp', () => {
  let url: string;
  let client: Client;
  const migration = new AgreementMovesPolicyStamp1766890000000();
  const runner = () => {
    const query = async (sql: string): Promise<unknown[]> =>
      (await client.query<Record<string, unknown>>(sql)).rows;
    return { query } as unknown as QueryRunner;
  };
  const one = async <T>(sql: string, values: unknown[] = []) =>
    (await client.query<T & Record<string, unknown>>(sql, values)).rows[0];
  const agency = async (name: string) =>
    (await one<{ id: string }>(`INSERT INTO agency (name) VALUES ($1) RETURNING id`, [name])).id;
  /** Every agency's stamp by name, and the county's. */
  const stamps = async (): Promise<Record<string, number>> => {
    const rows = (
      await client.query<{ name: string; stamp: string }>(
        `SELECT a.name, p.stamp::text AS stamp FROM agency a JOIN agency_policy_stamp p ON p.agency_id = a.id`,
      )
    ).rows;
    const county = (await one<{ stamp: string }>(`SELECT stamp::text AS stamp FROM policy_stamp`)).stamp;
    return { ...Object.fromEntries(rows.map((r) => [r.name, Number(r.stamp)])), county: Number(county) };
  };

  beforeAll(async () => {
    url = await createTestDatabase('agreement_moves_stamp');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it("moves the recipient's stamp and the county's with a version coming into force and a revocation, and with nothing else", async () => {
    const provider = await agency('Provider');
    const recipient = await agency('Recipient');
    const other = await agency('Other');
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
    const start = await stamps();
    const moved = async () => {
      const now = await stamps();
      return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - start[k]]));
    };

    // As the earlier release writes them: the agreement, then the county's stamp itself.
    await update(`in_force_version = 1`);
    await client.query(`UPDATE policy_stamp SET stamp = stamp + 1 WHERE id = 1`);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 1, Other: 0, county: 2 });
    // What changes what nobody may read moves nothing: an amendment proposed, the same value again.
    await update(`current_version = 2`);
    await update(`in_force_version = 1`);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 1, Other: 0, county: 2 });
    await update(`in_force_version = 2`);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 2, Other: 0, county: 3 });
    await update(`revoked_at = now(), revoked_by = '${steward}', revoked_by_agency_id = '${provider}'`);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 3, Other: 0, county: 4 });
    // A recipient changed (the database written by hand) moves both recipients' stamps.
    await update(`recipient_agency_id = '${other}'`);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 4, Other: 1, county: 5 });
    // By hand, one agency's.
    await client.query(MOVE_POLICY_STAMP_SQL, [other]);
    expect(await moved()).toEqual({ Provider: 0, Recipient: 4, Other: 2, county: 6 });

    // A change for an agency without its row is refused, and writes nothing.
    await client.query(`DELETE FROM agency_policy_stamp WHERE agency_id = $1`, [other]);
    await expect(update(`in_force_version = 1`)).rejects.toThrow(/has no policy stamp/);
    expect(
      (await one<{ v: number }>(`SELECT in_force_version AS v FROM agreement WHERE id = $1`, [agreement])).v,
    ).toBe(2);
    await client.query(`INSERT INTO agency_policy_stamp (agency_id) VALUES ($1)`, [other]);

    // Down: the agreement's changes move no stamp; up again, they do.
    await migration.down(runner());
    const downed = await stamps();
    await update(`in_force_version = 1`);
    expect(await stamps()).toEqual(downed);
    // An agency created by a broker of the earlier release while the stamps per agency were being
    // made, without its row: it gets one, at the county's stamp, and its agreements change again.
    await client.query(`DELETE FROM agency_policy_stamp WHERE agency_id = $1`, [other]);
    await migration.up(runner());
    expect((await stamps()).Other).toBe(downed.county);
    await update(`in_force_version = 2`);
    expect(await stamps()).toMatchObject({ Other: downed.county + 1, county: downed.county + 1 });
  });
});
