import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A linkage run's chunks are record key ranges, bounded by record keys: they are kept only while the
 * run works. Finishing a run (SUCCEEDED or FAILED) now deletes them in the same transaction, so the
 * chunks of runs finished before are deleted here. And a chunk may be `empty`: retention destroyed
 * the record that bounded it above and every record below it while its run worked; its bounds are
 * then null (see libs/registry/src/retention/linkage-chunks.ts), so it names no destroyed record.
 */
export class LinkageChunksFinished1766200000000 implements MigrationInterface {
  name = 'LinkageChunksFinished1766200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_chunk ADD COLUMN empty boolean NOT NULL DEFAULT false`);
    await q.query(`
      DELETE FROM linkage_chunk c USING linkage_run r
       WHERE c.run_id = r.id AND r.status IN ('SUCCEEDED', 'FAILED')`);
  }

  async down(q: QueryRunner): Promise<void> {
    // The deleted chunks are not needed by any run: nothing to restore.
    await q.query(`ALTER TABLE linkage_chunk DROP COLUMN empty`);
  }
}
