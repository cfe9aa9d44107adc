import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The personKey lookup tables (libs/linkage/src/person-key-index.ts), one per linkage run, scope
 * (recipient agency and purpose) and dataset instead of one per run and scope: `person_key_scope`
 * names its dataset, and keeps no counts of its own (retention deletes rows: persons and records are
 * counted from the table when asked); `person_key` rows are keyed by their scope row and record key.
 * The tables hold nothing that is not derived from the run in force: they are dropped and created
 * afresh, and the broker builds them again for the scopes and datasets analysts filter by.
 */
export class PersonKeyPerDataset1765500000000 implements MigrationInterface {
  name = 'PersonKeyPerDataset1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE person_key`);
    await q.query(`DROP TABLE person_key_scope`);
    await q.query(`
      CREATE TABLE person_key_scope (
        id serial PRIMARY KEY,
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        scope text NOT NULL,
        dataset_id uuid NOT NULL,
        built_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (run_id, scope, dataset_id)
      )`);
    await q.query(`
      CREATE TABLE person_key (
        scope_id int NOT NULL REFERENCES person_key_scope (id) ON DELETE CASCADE,
        record_key text NOT NULL,
        person_id bigint NOT NULL,
        prefix bigint NOT NULL,
        PRIMARY KEY (scope_id, record_key)
      )`);
    // How a filter finds its records; the primary key is how retention finds a destroyed record's.
    await q.query(`CREATE INDEX person_key_prefix_idx ON person_key (scope_id, prefix)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE person_key`);
    await q.query(`DROP TABLE person_key_scope`);
    await q.query(`
      CREATE TABLE person_key_scope (
        id serial PRIMARY KEY,
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        scope text NOT NULL,
        persons bigint NOT NULL,
        records bigint NOT NULL,
        built_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (run_id, scope)
      )`);
    await q.query(`
      CREATE TABLE person_key (
        scope_id int NOT NULL REFERENCES person_key_scope (id) ON DELETE CASCADE,
        dataset_id uuid NOT NULL,
        record_key text NOT NULL,
        person_id bigint NOT NULL,
        prefix bigint NOT NULL,
        PRIMARY KEY (scope_id, dataset_id, record_key)
      )`);
    await q.query(`CREATE INDEX person_key_prefix_idx ON person_key (scope_id, prefix)`);
  }
}
