import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Working in the open: oversight declines, recipients' destruction attestations, the register's
 * counts kept as the audit log grows, dataset retention, and the retention job's schedule.
 */
export class OpenRegister1764400000000 implements MigrationInterface {
  name = 'OpenRegister1764400000000';

  async up(q: QueryRunner): Promise<void> {
    // An AUDITOR's decline of one version: that version never comes into force.
    await q.query(`
      CREATE TABLE agreement_decline (
        agreement_id uuid NOT NULL,
        version int NOT NULL,
        agency_id uuid NOT NULL REFERENCES agency (id),
        user_id uuid NOT NULL REFERENCES app_user (id),
        reason text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (agreement_id, version),
        FOREIGN KEY (agreement_id, version) REFERENCES agreement_version (agreement_id, version)
      )`);
    // A recipient steward's attestation that every row released up to `through` is destroyed.
    await q.query(`
      CREATE TABLE destruction_attestation (
        agreement_id uuid NOT NULL REFERENCES agreement (id),
        through timestamptz NOT NULL,
        agency_id uuid NOT NULL REFERENCES agency (id),
        user_id uuid NOT NULL REFERENCES app_user (id),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (agreement_id, through)
      )`);
    for (const table of ['agreement_decline', 'destruction_attestation']) {
      await q.query(
        `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
           FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite()`,
      );
    }
    // The register's counts, kept by the audit append in its own transaction: one row per agreement
    // and UTC month (requests allowed, denials by a party's user, rows released), and one per agreement
    // and UTC day of rows released (what retention and attestations are measured against). No
    // foreign keys: a key check would lock the agreement row that approvals lock for update.
    await q.query(`
      CREATE TABLE register_month (
        agreement_id uuid NOT NULL,
        month date NOT NULL,
        allowed bigint NOT NULL DEFAULT 0,
        denied bigint NOT NULL DEFAULT 0,
        rows_released bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (agreement_id, month)
      )`);
    await q.query(`
      CREATE TABLE register_release_day (
        agreement_id uuid NOT NULL,
        day date NOT NULL,
        rows_released bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (agreement_id, day)
      )`);
    // Counts of the events appended before this migration, so the register starts complete.
    await q.query(`
      INSERT INTO register_month (agreement_id, month, allowed, denied, rows_released)
      SELECT e.agreement_id, date_trunc('month', e.at AT TIME ZONE 'UTC')::date,
             count(*) FILTER (WHERE e.decision = 'ALLOW'),
             count(*) FILTER (WHERE e.decision = 'DENY'
                                AND e.actor_agency_id IN (a.provider_agency_id, a.recipient_agency_id)),
             coalesce(sum(e.row_count) FILTER (WHERE e.decision = 'ALLOW' AND e.action IN ('QUERY', 'EXPORT')), 0)
        FROM audit_event e JOIN agreement a ON a.id = e.agreement_id
       WHERE e.action IN ('QUERY', 'AGGREGATE', 'EXPORT')
       GROUP BY 1, 2`);
    await q.query(`
      INSERT INTO register_release_day (agreement_id, day, rows_released)
      SELECT e.agreement_id, (e.at AT TIME ZONE 'UTC')::date, sum(e.row_count)
        FROM audit_event e JOIN agreement a ON a.id = e.agreement_id
       WHERE e.action IN ('QUERY', 'EXPORT') AND e.decision = 'ALLOW' AND e.row_count > 0
       GROUP BY 1, 2`);

    await q.query(`ALTER TABLE dataset ADD COLUMN retention_days int CHECK (retention_days > 0)`);
    await q.query(`ALTER TABLE dataset ADD COLUMN retention_field text`);
    await q.query(
      `ALTER TABLE dataset ADD CONSTRAINT dataset_retention_both
         CHECK ((retention_days IS NULL) = (retention_field IS NULL))`,
    );
    // The retention job's schedule and last run: kept here so that a Redis restart cannot stop it
    // unseen (the worker re-creates the repeatable job from this row at start).
    await q.query(`
      CREATE TABLE retention_schedule (
        id int PRIMARY KEY CHECK (id = 1),
        every_hours int NOT NULL DEFAULT 24 CHECK (every_hours > 0),
        last_started_at timestamptz,
        last_finished_at timestamptz,
        last_destroyed bigint,
        last_error text
      )`);
    await q.query(`INSERT INTO retention_schedule (id) VALUES (1)`);
    // What a subject access report needs of a destroyed record: its subject and row id, so the
    // releases that returned it are still found. The record's values are gone.
    await q.query(`
      CREATE TABLE destroyed_record (
        dataset_id uuid NOT NULL REFERENCES dataset (id),
        subject_id text NOT NULL,
        rid bigint NOT NULL,
        destroyed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (dataset_id, subject_id, rid)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE destroyed_record`);
    await q.query(`DROP TABLE retention_schedule`);
    await q.query(`ALTER TABLE dataset DROP CONSTRAINT dataset_retention_both`);
    await q.query(`ALTER TABLE dataset DROP COLUMN retention_field`);
    await q.query(`ALTER TABLE dataset DROP COLUMN retention_days`);
    await q.query(`DROP TABLE register_release_day`);
    await q.query(`DROP TABLE register_month`);
    await q.query(`DROP TABLE destruction_attestation`);
    await q.query(`DROP TABLE agreement_decline`);
  }
}
