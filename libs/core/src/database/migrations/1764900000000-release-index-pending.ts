import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The GIN index of released row ids takes new entries into its pending list, and the backend whose
 * insert finds that list over `gin_pending_list_limit` merges it into the index itself, inside the
 * audit group commit that holds the chain head's lock. At the default 4 MB, an export of 800,000 rows
 * merged for two seconds, and one page in every few hundred of 1,000 rows stalled every request
 * behind it. At 32 MB the merge is left to autovacuum, which release_record's inserts trigger; a
 * subject access report reads the pending list besides the index, which costs it a little more.
 */
export class ReleaseIndexPending1764900000000 implements MigrationInterface {
  name = 'ReleaseIndexPending1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER INDEX release_record_rids_idx SET (gin_pending_list_limit = 32768)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER INDEX release_record_rids_idx RESET (gin_pending_list_limit)`);
  }
}
