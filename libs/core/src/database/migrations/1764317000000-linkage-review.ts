import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Review of linkage: each run's pairs nearest its threshold (the records they join and their
 * comparison levels, for the operator to read as patterns and each steward to read its own side),
 * and the decisions on pairs (same person or not), kept across runs and applied by every later run.
 */
export class LinkageReview1764317000000 implements MigrationInterface {
  name = 'LinkageReview1764317000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE linkage_review_pair (
        run_id uuid NOT NULL REFERENCES linkage_run (id) ON DELETE CASCADE,
        pair int NOT NULL,
        dataset_a uuid NOT NULL,
        key_a text NOT NULL,
        dataset_b uuid NOT NULL,
        key_b text NOT NULL,
        levels jsonb NOT NULL,
        weight double precision NOT NULL,
        PRIMARY KEY (run_id, pair)
      )`);
    // One decision per pair of records, the two in a fixed order; the latest decision stands.
    await q.query(`
      CREATE TABLE linkage_decision (
        dataset_a uuid NOT NULL,
        key_a text NOT NULL,
        dataset_b uuid NOT NULL,
        key_b text NOT NULL,
        same boolean NOT NULL,
        decided_by uuid NOT NULL REFERENCES app_user (id),
        decided_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        run_id uuid REFERENCES linkage_run (id) ON DELETE SET NULL,
        PRIMARY KEY (dataset_a, key_a, dataset_b, key_b),
        CHECK ((dataset_a::text, key_a) < (dataset_b::text, key_b))
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE linkage_decision`);
    await q.query(`DROP TABLE linkage_review_pair`);
  }
}
