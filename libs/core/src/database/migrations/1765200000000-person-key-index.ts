import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A lookup table for filters on personKey (libs/linkage/src/person-key-index.ts): for one linkage run
 * and one scope (recipient agency and purpose), each linked record beside its person and the first 64
 * bits of the person's pseudonym, so that a filter on some pseudonyms finds its records by index
 * instead of hashing every linked record of the dataset. Built in the background, for the scopes
 * analysts filter by, a scope's rows committed with its row in `person_key_scope`: a scope is either
 * there whole or not at all, and the data plane hashes every record while it is not. Nothing here is
 * a key: the pseudonyms' key is derived inside PostgreSQL from `linkage_secret` and never stored.
 * `linkage_person` itself gains no index: a run's writes cost what they did.
 */
export class PersonKeyIndex1765200000000 implements MigrationInterface {
  name = 'PersonKeyIndex1765200000000';

  async up(q: QueryRunner): Promise<void> {
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
    // How a filter finds its records; the primary key is how retention finds a destroyed record's.
    await q.query(`CREATE INDEX person_key_prefix_idx ON person_key (scope_id, prefix)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE person_key`);
    await q.query(`DROP TABLE person_key_scope`);
  }
}
