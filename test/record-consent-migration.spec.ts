import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { dropDatabase } from '@broker/core';
import { createTestDatabase } from '@broker/testing';
import { RecordConsent1766910000000 } from '../libs/core/src/database/migrations/1766910000000-record-consent';

/**
 * The migration that gives each record of a dataset with a subject field its subject's consent
 * (`_consent`) and the triggers that keep it, and its `down`: the record tables there are when it
 * runs are filled from the consent in force, and kept from then on.
 */
describe('migration record-consent', () => {
  let url: string;
  let client: Client;
  const migration = new RecordConsent1766910000000();
  const runner = {
    query: async (sql: string, params?: unknown[]): Promise<unknown[]> =>
      (await client.query<Record<string, unknown>>(sql, params)).rows,
  } as unknown as QueryRunner;
  const WITH_SUBJECT = '00000000-0000-4000-8000-000000000001';
  const WITHOUT = '00000000-0000-4000-8000-000000000002';
  const consentColumns = async () =>
    (
      await client.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.columns
          WHERE table_schema = 'records' AND column_name = '_consent' ORDER BY 1`,
      )
    ).rows.map((r) => r.table_name);
  /** Consent in force, as the consent service writes it (its event's foreign keys left out). */
  const consent = async (subject: string, purpose: string, granted: boolean) => {
    await client.query(`SET session_replication_role = replica`);
    const { rows } = await client.query<{ id: string }>(
      `INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
       VALUES ($1, $2, $3, $4, gen_random_uuid()) RETURNING id`,
      [WITH_SUBJECT, subject, purpose, granted],
    );
    await client.query(`RESET session_replication_role`);
    await client.query(
      `INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (dataset_id, purpose, subject_id) DO UPDATE SET granted = excluded.granted, event_id = excluded.event_id`,
      [WITH_SUBJECT, purpose, subject, granted, rows[0].id],
    );
  };
  const consentOf = async () =>
    (await client.query(`SELECT id, _consent FROM records.people ORDER BY id`)).rows as unknown[];

  beforeAll(async () => {
    url = await createTestDatabase('record_consent_migration');
    client = new Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    if (url) await dropDatabase(url);
  });

  it('fills the consent of the records there are, keeps it from then on; down takes it away', async () => {
    await migration.down(runner);
    // Two datasets of an earlier release (their agency and author left out), one with a subject field.
    await client.query(`SET session_replication_role = replica`);
    for (const [id, slug, subject] of [
      [WITH_SUBJECT, 'people', 'person'],
      [WITHOUT, 'places', null],
    ]) {
      await client.query(
        `INSERT INTO dataset (id, provider_agency_id, slug, type_name, title, key_field, subject_field, created_by)
         VALUES ($1, gen_random_uuid(), $2, $2, $2, 'id', $3, gen_random_uuid())`,
        [id, slug, subject],
      );
    }
    await client.query(`RESET session_replication_role`);
    await client.query(`INSERT INTO purpose (code, description) VALUES ('RESEARCH', 'r'), ('ADMIN', 'a')`);
    await client.query(`CREATE TABLE records.people (id text PRIMARY KEY, person text, "_rid" bigint)`);
    await client.query(`CREATE TABLE records.places (id text PRIMARY KEY, "_rid" bigint)`);
    await client.query(`INSERT INTO records.people VALUES ('a', 'P1', 1), ('b', 'P2', 2), ('c', NULL, 3)`);
    await consent('P1', 'RESEARCH', true);
    await consent('P1', 'ADMIN', true);
    await consent('P2', 'RESEARCH', false);
    expect(await consentColumns()).toEqual([]);

    await migration.up(runner);
    expect(await consentColumns()).toEqual(['people']);
    expect(await consentOf()).toEqual([
      { id: 'a', _consent: ',ADMIN,RESEARCH,' },
      { id: 'b', _consent: null },
      { id: 'c', _consent: null },
    ]);
    // Kept: a consent given, a record added and one moved to another subject, whatever the session's
    // replication role (a bulk load may set it to skip foreign-key checks).
    await consent('P2', 'RESEARCH', true);
    await client.query(`SET session_replication_role = replica`);
    await client.query(`INSERT INTO records.people VALUES ('d', 'P2', 4)`);
    expect((await client.query(`SELECT _consent FROM records.people WHERE id = 'd'`)).rows).toEqual([
      { _consent: ',RESEARCH,' },
    ]);
    await client.query(
      `INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id)
       SELECT dataset_id, 'ADMIN', 'P2', true, event_id FROM consent_current WHERE subject_id = 'P2'`,
    );
    await client.query(`RESET session_replication_role`);
    await client.query(`DELETE FROM consent_current WHERE subject_id = 'P2' AND purpose = 'ADMIN'`);
    await client.query(`UPDATE records.people SET person = 'P1' WHERE id = 'c'`);
    await consent('P1', 'ADMIN', false);
    expect(await consentOf()).toEqual([
      { id: 'a', _consent: ',RESEARCH,' },
      { id: 'b', _consent: ',RESEARCH,' },
      { id: 'c', _consent: ',RESEARCH,' },
      { id: 'd', _consent: ',RESEARCH,' },
    ]);

    await migration.down(runner);
    expect(await consentColumns()).toEqual([]);
    // Nothing of it is left to fire: consent and records change as in the earlier release.
    await consent('P2', 'ADMIN', true);
    await client.query(`INSERT INTO records.people VALUES ('e', 'P2', 5)`);
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE '%consent%follow%' OR tgname LIKE 'record_consent%'`,
    );
    expect(rows).toEqual([{ n: 0 }]);
    await migration.up(runner);
  });
});
