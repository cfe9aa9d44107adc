import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `release_record` no longer has foreign keys (to `audit_event` by `audit_seq`, to `dataset` by
 * `dataset_id`). Every list is written by the statement that writes its event, with the seq that
 * statement gave it and its event's dataset (libs/audit's append); `audit_event` is append-only (its
 * triggers refuse UPDATE, DELETE and TRUNCATE) and no dataset is ever deleted; and verification
 * breaks the chain at a list of no event (`ORPHAN_RELEASE_SQL`) or of another dataset than its
 * event's, which is how a list written around the keys would have been found anyway, the owner
 * being able to switch keys off. What the keys cost was paid on every page's append, under the
 * chain head's lock: a lookup of each referenced row and a row lock on it, which writes to the
 * dataset's row on every page (0.10–0.16 ms of PostgreSQL's time for the first check of a statement,
 * `EXPLAIN ANALYZE`; dropping one key moved that cost to the other).
 */
export class ReleaseRecordUnchecked1765400000000 implements MigrationInterface {
  name = 'ReleaseRecordUnchecked1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE release_record DROP CONSTRAINT release_record_audit_seq_fkey`);
    await q.query(`ALTER TABLE release_record DROP CONSTRAINT release_record_dataset_id_fkey`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE release_record ADD CONSTRAINT release_record_audit_seq_fkey
         FOREIGN KEY (audit_seq) REFERENCES audit_event (seq)`,
    );
    await q.query(
      `ALTER TABLE release_record ADD CONSTRAINT release_record_dataset_id_fkey
         FOREIGN KEY (dataset_id) REFERENCES dataset (id)`,
    );
  }
}
