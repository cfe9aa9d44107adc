import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * User management (DESIGN §4.1 "Users"): deactivation, invitation keys, e-mails unique within an
 * agency only, and auditors in an agency of their own.
 */
export class Users1764500000000 implements MigrationInterface {
  name = 'Users1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE app_user ADD COLUMN deactivated_at timestamptz`);
    await q.query(`ALTER TABLE app_user ADD COLUMN deactivated_by uuid REFERENCES app_user (id)`);
    // A key the operator created works for `me` and `rotateApiKey` only, until its owner rotates it.
    await q.query(`ALTER TABLE api_key ADD COLUMN invitation boolean NOT NULL DEFAULT false`);
    await q.query(`DROP INDEX app_user_email_key`);
    // Unique within an agency (operators, who have none, among themselves): no answer can tell
    // whether another agency uses an address.
    await q.query(
      `CREATE UNIQUE INDEX app_user_agency_email_key ON app_user (agency_id, lower(email)) NULLS NOT DISTINCT`,
    );
    // Auditors created from now on belong to an oversight agency; existing rows are left as they are.
    await q.query(
      `ALTER TABLE app_user ADD CONSTRAINT app_user_auditor_agency CHECK (role <> 'AUDITOR' OR agency_id IS NOT NULL) NOT VALID`,
    );
    await q.query(
      `CREATE INDEX app_user_active_steward_idx ON app_user (agency_id) WHERE role = 'STEWARD' AND deactivated_at IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX app_user_active_steward_idx`);
    await q.query(`ALTER TABLE app_user DROP CONSTRAINT app_user_auditor_agency`);
    await q.query(`DROP INDEX app_user_agency_email_key`);
    await q.query(`CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email))`);
    await q.query(`ALTER TABLE api_key DROP COLUMN invitation`);
    await q.query(`ALTER TABLE app_user DROP COLUMN deactivated_by`);
    await q.query(`ALTER TABLE app_user DROP COLUMN deactivated_at`);
  }
}
