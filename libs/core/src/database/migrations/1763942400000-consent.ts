import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Consent per subject and purpose: every record kept, the latest one in force. */
export class Consent1763942400000 implements MigrationInterface {
  name = 'Consent1763942400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE consent_event (
        id bigserial PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES dataset (id),
        subject_id text NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 200),
        purpose text NOT NULL REFERENCES purpose (code),
        granted boolean NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        recorded_by uuid NOT NULL REFERENCES app_user (id)
      )`);
    await q.query(`CREATE INDEX consent_event_subject_idx ON consent_event (dataset_id, subject_id, id)`);
    await q.query(
      `CREATE TRIGGER consent_event_append_only BEFORE UPDATE OR DELETE ON consent_event
         FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite()`,
    );
    // The consent in force per (dataset, purpose, subject): what the data plane joins on.
    await q.query(`
      CREATE TABLE consent_current (
        dataset_id uuid NOT NULL REFERENCES dataset (id),
        purpose text NOT NULL REFERENCES purpose (code),
        subject_id text NOT NULL,
        granted boolean NOT NULL,
        event_id bigint NOT NULL REFERENCES consent_event (id),
        PRIMARY KEY (dataset_id, purpose, subject_id)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE consent_current`);
    await q.query(`DROP TABLE consent_event`);
  }
}
