import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Release lists staged by PostgreSQL for the append that records them (libs/audit/src/release-staging.ts).
 * An export's list of released row ids is written here from the export's own snapshot, by
 * PostgreSQL, and moved into `release_record` by the statement that appends the EXPORT event, in the
 * same transaction: the list never passes through the broker's memory, whatever the export's size.
 * A staged list is nobody's record until then: UNLOGGED (no WAL for it; a crash of the server empties
 * the table, and an append whose list is gone fails, releasing nothing), and lists an append never
 * took are deleted after an hour.
 */
export class ReleaseStaged1765300000000 implements MigrationInterface {
  name = 'ReleaseStaged1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE UNLOGGED TABLE release_staged (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        dataset_id uuid NOT NULL,
        rids bigint[] NOT NULL,
        staged_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE release_staged`);
  }
}
