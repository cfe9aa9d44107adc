import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * How many times a linkage run went back to its estimate phase because a retention batch destroyed
 * records its model had learned from (the model, and what the score and cluster units derived from
 * it, are then learned and done again from the records left). Unit jobs enqueued after the n-th
 * time carry n in their BullMQ job id, so that a unit done again is a new job.
 */
export class LinkageRunRestarts1766500000000 implements MigrationInterface {
  name = 'LinkageRunRestarts1766500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_run ADD COLUMN restarts int NOT NULL DEFAULT 0`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_run DROP COLUMN restarts`);
  }
}
