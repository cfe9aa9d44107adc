import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Whether a HASH lookup table files a common value's records after all (`filed`): a value common for
 * a page of 10 rows, which finds its records faster by hashing in the page's order, may still be
 * rare enough for a page of 1,000 rows, an export or a count to read them from the table
 * (libs/registry/src/dataset/hash-lookup.ts). The values listed before this migration are not filed.
 */
export class HashKeyCommonFiled1765900000000 implements MigrationInterface {
  name = 'HashKeyCommonFiled1765900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_common ADD COLUMN filed boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_common DROP COLUMN filed`);
  }
}
