import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agreements: immutable versions, approvals bound to a version, revocation, a per-agreement HMAC
 * key kept apart from everything released, and the policy stamp every broker instance checks.
 * Record tables gain `_rid`, a random row id that orders rows without revealing anything.
 */
export class Agreements1763856100000 implements MigrationInterface {
  name = 'Agreements1763856100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
    await q.query(`
      CREATE TABLE agreement (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        provider_agency_id uuid NOT NULL REFERENCES agency (id),
        recipient_agency_id uuid NOT NULL REFERENCES agency (id),
        current_version int NOT NULL,
        in_force_version int,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by uuid NOT NULL REFERENCES app_user (id),
        revoked_at timestamptz,
        revoked_by uuid REFERENCES app_user (id),
        revoked_by_agency_id uuid REFERENCES agency (id),
        revoke_reason text,
        CHECK (provider_agency_id <> recipient_agency_id),
        CHECK (in_force_version IS NULL OR in_force_version <= current_version)
      )`);
    await q.query(`CREATE INDEX agreement_provider_idx ON agreement (provider_agency_id)`);
    await q.query(`CREATE INDEX agreement_recipient_idx ON agreement (recipient_agency_id)`);
    await q.query(`
      CREATE TABLE agreement_version (
        agreement_id uuid NOT NULL REFERENCES agreement (id),
        version int NOT NULL CHECK (version >= 1),
        content jsonb NOT NULL,
        hash text NOT NULL,
        valid_from timestamptz NOT NULL,
        valid_until timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by uuid NOT NULL REFERENCES app_user (id),
        PRIMARY KEY (agreement_id, version),
        CHECK (valid_from < valid_until)
      )`);
    await q.query(`
      CREATE TABLE agreement_approval (
        agreement_id uuid NOT NULL,
        version int NOT NULL,
        agency_id uuid NOT NULL REFERENCES agency (id),
        user_id uuid NOT NULL REFERENCES app_user (id),
        at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (agreement_id, version, agency_id),
        FOREIGN KEY (agreement_id, version) REFERENCES agreement_version (agreement_id, version)
      )`);
    // The key that HASH transforms use; read only by the data plane, never returned by any API.
    await q.query(`
      CREATE TABLE agreement_secret (
        agreement_id uuid PRIMARY KEY REFERENCES agreement (id),
        hmac_key bytea NOT NULL CHECK (length(hmac_key) = 32)
      )`);
    // Versions and approvals are history: never rewritten.
    await q.query(`
      CREATE FUNCTION forbid_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
      END $$`);
    for (const table of ['agreement_version', 'agreement_approval']) {
      await q.query(
        `CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
           FOR EACH ROW EXECUTE FUNCTION forbid_history_rewrite()`,
      );
    }
    // Bumped in the transaction of every agreement change; brokers compare it to their cache.
    await q.query(`CREATE TABLE policy_stamp (id int PRIMARY KEY CHECK (id = 1), stamp bigint NOT NULL)`);
    await q.query(`INSERT INTO policy_stamp (id, stamp) VALUES (1, 0)`);

    const datasets = (await q.query(`SELECT slug FROM dataset`)) as { slug: string }[];
    for (const { slug } of datasets) {
      await q.query(
        `ALTER TABLE records."${slug.replace(/"/g, '""')}"
           ADD COLUMN "_rid" bigint NOT NULL DEFAULT floor(random() * 9007199254740991)::bigint`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    const datasets = (await q.query(`SELECT slug FROM dataset`)) as { slug: string }[];
    for (const { slug } of datasets) {
      await q.query(`ALTER TABLE records."${slug.replace(/"/g, '""')}" DROP COLUMN "_rid"`);
    }
    await q.query(`DROP TABLE policy_stamp`);
    await q.query(`DROP TABLE agreement_secret`);
    await q.query(`DROP TABLE agreement_approval`);
    await q.query(`DROP TABLE agreement_version`);
    await q.query(`DROP TABLE agreement`);
    await q.query(`DROP FUNCTION forbid_history_rewrite()`);
  }
}
