import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The common values of a HASH name's lookup table (libs/registry/src/dataset/hash-lookup.ts): the
 * first 64 bits of the HMAC of each value that more than a hundred records share, which the table
 * does not file. A filter on such a value finds its records faster by hashing them in the page's
 * order; a filter on the other values, rare ones included in a field where most values are common,
 * reads the table. Deleted with its table.
 */
export class HashKeyCommon1765800000000 implements MigrationInterface {
  name = 'HashKeyCommon1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE hash_key_common (
        scope_id int NOT NULL REFERENCES hash_key_scope (id) ON DELETE CASCADE,
        prefix bigint NOT NULL,
        records bigint NOT NULL,
        PRIMARY KEY (scope_id, prefix)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE hash_key_common`);
  }
}
