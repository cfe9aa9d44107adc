import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Agencies, users and their API keys, purposes, and the dataset registry. */
export class Foundation1763769600000 implements MigrationInterface {
  name = 'Foundation1763769600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE SCHEMA IF NOT EXISTS records`);
    await q.query(`
      CREATE TABLE agency (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        kind text CHECK (length(kind) <= 100),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX agency_name_key ON agency (lower(name))`);
    await q.query(`
      CREATE TABLE app_user (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        agency_id uuid REFERENCES agency (id),
        email text NOT NULL,
        display_name text,
        role text NOT NULL CHECK (role IN ('OPERATOR', 'STEWARD', 'ANALYST', 'AUDITOR')),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT app_user_agency_by_role CHECK (
          (role = 'OPERATOR' AND agency_id IS NULL)
          OR (role IN ('STEWARD', 'ANALYST') AND agency_id IS NOT NULL)
          OR role = 'AUDITOR')
      )`);
    await q.query(`CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email))`);
    await q.query(`CREATE INDEX app_user_agency_idx ON app_user (agency_id)`);
    await q.query(`
      CREATE TABLE api_key (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id uuid NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
        key_hash bytea NOT NULL UNIQUE,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz
      )`);
    await q.query(`CREATE INDEX api_key_user_idx ON api_key (user_id)`);
    await q.query(`
      CREATE TABLE purpose (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        code text NOT NULL UNIQUE CHECK (code ~ '^[A-Z][A-Z0-9_]{2,63}$'),
        description text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE dataset (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        provider_agency_id uuid NOT NULL REFERENCES agency (id),
        slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_]{2,62}$'),
        type_name text NOT NULL UNIQUE,
        title text NOT NULL,
        description text,
        key_field text NOT NULL,
        subject_field text,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by uuid NOT NULL REFERENCES app_user (id)
      )`);
    await q.query(`CREATE INDEX dataset_provider_idx ON dataset (provider_agency_id)`);
    await q.query(`
      CREATE TABLE dataset_field (
        dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
        position int NOT NULL,
        name text NOT NULL,
        type text NOT NULL CHECK (type IN ('STRING', 'INTEGER', 'FLOAT', 'BOOLEAN', 'DATE', 'DATETIME')),
        classification text NOT NULL
          CHECK (classification IN ('DIRECT_IDENTIFIER', 'QUASI_IDENTIFIER', 'SENSITIVE', 'NON_SENSITIVE')),
        identity text
          CHECK (identity IN ('FIRST_NAME', 'MIDDLE_NAME', 'LAST_NAME', 'DATE_OF_BIRTH', 'SEX', 'SSN', 'ZIP')),
        required boolean NOT NULL DEFAULT false,
        description text,
        PRIMARY KEY (dataset_id, name),
        UNIQUE (dataset_id, position)
      )`);
    await q.query(`CREATE UNIQUE INDEX dataset_field_identity_key ON dataset_field (dataset_id, identity)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE dataset_field`);
    await q.query(`DROP TABLE dataset`);
    await q.query(`DROP TABLE purpose`);
    await q.query(`DROP TABLE api_key`);
    await q.query(`DROP TABLE app_user`);
    await q.query(`DROP TABLE agency`);
    await q.query(`DROP SCHEMA records CASCADE`);
  }
}
