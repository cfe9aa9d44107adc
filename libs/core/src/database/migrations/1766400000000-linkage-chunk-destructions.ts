import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How many retention batches destroyed records of a chunk's dataset while its run worked. A unit of
 * the run reads the sum over the run's chunks before it reads its inputs, and commits only if it is
 * still the same (see LINKAGE_CHUNKS_LOCK): otherwise what it computed may hold records destroyed
 * since, and it is done again from what retention left.
 */
export class LinkageChunkDestructions1766400000000 implements MigrationInterface {
  name = 'LinkageChunkDestructions1766400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_chunk ADD COLUMN destructions int NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_chunk DROP COLUMN destructions`);
  }
}
