import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Which records each data-plane release returned, by their random row ids: what a subject access
 * report reads. One row per audited QUERY event that returned rows; its event's details carry the
 * SHA-256 of the id list, so the chain vouches for it.
 */
export class Releases1764028800000 implements MigrationInterface {
  name = 'Releases1764028800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE release_record (
        audit_seq bigint PRIMARY KEY REFERENCES audit_event (seq),
        dataset_id uuid NOT NULL REFERENCES dataset (id),
        rids bigint[] NOT NULL
      )`);
    // Reports look up "releases that contain any of these rows": a GIN index over the id arrays,
    // whose pending list keeps each insert cheap (entries are merged in the background).
    await q.query(
      `CREATE INDEX release_record_rids_idx ON release_record USING gin (rids) WITH (fastupdate = on)`,
    );
    await q.query(
      `CREATE TRIGGER release_record_append_only BEFORE UPDATE OR DELETE ON release_record
         FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite()`,
    );
    await q.query(
      `CREATE TRIGGER release_record_no_truncate BEFORE TRUNCATE ON release_record
         FOR EACH STATEMENT EXECUTE FUNCTION forbid_history_rewrite()`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE release_record`);
  }
}
