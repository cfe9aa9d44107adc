import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A release's list of record ids is kept in its row when the row fits a page (up to about 1,000 ids,
 * a full page of rows), instead of being cut into TOAST chunks with their own index: the list is
 * written inside the audit append that every page waits for, and its TOAST (five tuples and five
 * index entries for 1,000 ids) was most of that append's time beyond a plain insert (see "The
 * release list" in docs/benchmarks.md). Longer lists (an export's) are compressed and moved out of
 * the row as before. Storage settings only: no row is rewritten, and an earlier release reads and
 * writes the table as it did.
 */
export class ReleaseRecordInline1766860000000 implements MigrationInterface {
  name = 'ReleaseRecordInline1766860000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE release_record ALTER COLUMN rids SET STORAGE MAIN`);
    await q.query(`ALTER TABLE release_record SET (toast_tuple_target = 8160)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE release_record RESET (toast_tuple_target)`);
    await q.query(`ALTER TABLE release_record ALTER COLUMN rids SET STORAGE EXTENDED`);
  }
}
