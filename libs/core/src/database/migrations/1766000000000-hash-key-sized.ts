import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The common values a HASH lookup table files after all move to a table of their own
 * (`hash_key_sized`: their prefix and records, which the data plane weighs against a page's size),
 * and `hash_key_common` lists again only the values a table does not file, as it did before
 * migration hash-key-common-filed. A broker of a version before that one, still running beside
 * newer ones while they are rolled out, then reads both tables as it always did: it skips filing
 * exactly the values that are not filed, and never reads the table for them, so no table it keeps
 * misses a record a newer broker looks for.
 */
export class HashKeySized1766000000000 implements MigrationInterface {
  name = 'HashKeySized1766000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE hash_key_sized (
        scope_id int NOT NULL REFERENCES hash_key_scope (id) ON DELETE CASCADE,
        prefix bigint NOT NULL,
        records bigint NOT NULL,
        PRIMARY KEY (scope_id, prefix)
      )`);
    await q.query(`
      INSERT INTO hash_key_sized (scope_id, prefix, records)
      SELECT scope_id, prefix, records FROM hash_key_common WHERE filed`);
    await q.query(`DELETE FROM hash_key_common WHERE filed`);
    await q.query(`ALTER TABLE hash_key_common DROP COLUMN filed`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_common ADD COLUMN filed boolean NOT NULL DEFAULT false`);
    await q.query(`
      INSERT INTO hash_key_common (scope_id, prefix, records, filed)
      SELECT scope_id, prefix, records, true FROM hash_key_sized`);
    await q.query(`DROP TABLE hash_key_sized`);
  }
}
