import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The lookup tables of HASH names outlive retention (libs/registry/src/dataset/hash-lookup.ts): the
 * records a retention batch destroys keep their entries, which find nothing any more (a row id found
 * here is only ever joined back to the dataset's table), and are counted here. A table whose destroyed
 * records pass a quarter of its entries (`records`, which ingestion keeps counted) is dropped, and
 * built afresh at the next filter.
 */
export class HashKeyDestroyed1765700000000 implements MigrationInterface {
  name = 'HashKeyDestroyed1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_scope ADD COLUMN destroyed bigint NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_scope DROP COLUMN destroyed`);
  }
}
