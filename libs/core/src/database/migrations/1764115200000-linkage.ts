import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Record linkage: runs and their units of work (the state that lets a killed worker's job be
 * redone), the intermediate results units hand each other, each run's person per record, the
 * pointer to the run in force, and the secret that pseudonyms per (recipient, purpose) derive from.
 */
export class Linkage1764115200000 implements MigrationInterface {
  name = 'Linkage1764115200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE linkage_run (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        status text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED')),
        trigger text NOT NULL CHECK (trigger IN ('MANUAL', 'INGESTION')),
        requested_by uuid REFERENCES app_user (id),
        phase text CHECK (phase IN ('prepare', 'normalise', 'estimate', 'score', 'cluster')),
        datasets jsonb,
        chunks int,
        partitions int,
        units_total int,
        units_done int NOT NULL DEFAULT 0,
        threshold double precision,
        settings jsonb,
        model jsonb,
        stats jsonb,
        weight_histogram jsonb,
        error text,
        previous_run_id uuid REFERENCES linkage_run (id),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await q.query(`CREATE INDEX linkage_run_created_idx ON linkage_run (created_at DESC, id DESC)`);
    // One run works at a time, and at most one waits: a later request joins the waiting one.
    await q.query(
      `CREATE UNIQUE INDEX linkage_run_one_running ON linkage_run ((true)) WHERE status = 'RUNNING'`,
    );
    await q.query(
      `CREATE UNIQUE INDEX linkage_run_one_queued ON linkage_run ((true)) WHERE status = 'QUEUED'`,
    );

    await q.query(`
      CREATE TABLE linkage_chunk (
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        chunk int NOT NULL,
        dataset_no int NOT NULL,
        key_after text,
        key_last text,
        PRIMARY KEY (run_id, chunk)
      )`);
    // A unit is done once its results are committed, in the same transaction.
    await q.query(`
      CREATE TABLE linkage_unit (
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        phase text NOT NULL,
        unit int NOT NULL,
        attempts int NOT NULL DEFAULT 0,
        done_at timestamptz,
        stats jsonb,
        PRIMARY KEY (run_id, phase, unit)
      )`);
    // Intermediate results (normalised records by chunk and partition, links, term frequencies):
    // rebuilt from the records by any run, so unlogged, and stored uncompressed (they are binary).
    await q.query(`
      CREATE UNLOGGED TABLE linkage_blob (
        run_id uuid NOT NULL,
        kind text NOT NULL,
        a int NOT NULL,
        b int NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (run_id, kind, a, b)
      )`);
    await q.query(`ALTER TABLE linkage_blob ALTER COLUMN data SET STORAGE EXTERNAL`);
    // Each successful run's person per record; the data plane reads the run in force.
    await q.query(`
      CREATE TABLE linkage_person (
        run_id uuid NOT NULL,
        dataset_id uuid NOT NULL,
        record_key text NOT NULL,
        person_id bigint NOT NULL,
        PRIMARY KEY (run_id, dataset_id, record_key)
      )`);
    await q.query(`
      CREATE TABLE linkage_state (
        id int PRIMARY KEY CHECK (id = 1),
        current_run_id uuid REFERENCES linkage_run (id),
        next_person_id bigint NOT NULL DEFAULT 1
      )`);
    await q.query(`INSERT INTO linkage_state (id) VALUES (1)`);
    // The root of every pseudonym key; read only inside SQL, never returned by any API.
    await q.query(`
      CREATE TABLE linkage_secret (
        id int PRIMARY KEY CHECK (id = 1),
        secret bytea NOT NULL CHECK (length(secret) = 32)
      )`);
    await q.query(`INSERT INTO linkage_secret (id, secret) VALUES (1, public.gen_random_bytes(32))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE linkage_secret`);
    await q.query(`DROP TABLE linkage_state`);
    await q.query(`DROP TABLE linkage_person`);
    await q.query(`DROP TABLE linkage_blob`);
    await q.query(`DROP TABLE linkage_unit`);
    await q.query(`DROP TABLE linkage_chunk`);
    await q.query(`DROP TABLE linkage_run`);
  }
}
