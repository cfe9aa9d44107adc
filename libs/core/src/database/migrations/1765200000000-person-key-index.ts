import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A lookup table for filters on personKey (libs/linkage/src/person-key-index.ts): for one linkage run
 * and one scope (recipient agency and purpose), the first 64 bits of each person's pseudonym beside
 * the person's id, so that a filter on some pseudonyms finds its persons by index instead of hashing
 * every linked record of the dataset. Built in the background, for the scopes analysts filter by, a
 * scope's rows committed with its row in `person_key_scope`: a scope is either there whole or not at
 * all, and the data plane hashes every record while it is not. Nothing here is a key: the pseudonyms'
 * key is derived inside PostgreSQL from `linkage_secret` and never stored.
 *
 * And an index of the persons by id within a run, to go from a person to its records.
 */
export class PersonKeyIndex1765200000000 implements MigrationInterface {
  name = 'PersonKeyIndex1765200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX linkage_person_person_idx ON linkage_person (run_id, person_id)`);
    await q.query(`
      CREATE TABLE person_key_scope (
        id serial PRIMARY KEY,
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        scope text NOT NULL,
        persons bigint NOT NULL,
        built_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (run_id, scope)
      )`);
    await q.query(`
      CREATE TABLE person_key (
        scope_id int NOT NULL REFERENCES person_key_scope (id) ON DELETE CASCADE,
        prefix bigint NOT NULL,
        person_id bigint NOT NULL,
        PRIMARY KEY (scope_id, person_id)
      )`);
    // How a filter finds its persons; the primary key is how retention finds a destroyed person's.
    await q.query(`CREATE INDEX person_key_prefix_idx ON person_key (scope_id, prefix)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE person_key`);
    await q.query(`DROP TABLE person_key_scope`);
    await q.query(`DROP INDEX linkage_person_person_idx`);
  }
}
