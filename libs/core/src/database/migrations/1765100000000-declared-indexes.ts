import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The indexes a steward declared on a dataset (each a list of field names), kept with the dataset so
 * that a broker can build again one whose concurrent build failed (see DatasetService.ensureIndexes).
 * Until now they were only in the audit log: the ones declared with `updateDataset` are taken from
 * its DATASET_UPDATED events; the ones declared at registration were built in its transaction, valid
 * if it committed, and are not recorded anywhere else.
 */
export class DeclaredIndexes1765100000000 implements MigrationInterface {
  name = 'DeclaredIndexes1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE dataset ADD COLUMN declared_indexes jsonb NOT NULL DEFAULT '[]'::jsonb`);
    await q.query(`
      UPDATE dataset d
         SET declared_indexes = declared.indexes
        FROM (SELECT e.dataset_id, jsonb_agg(DISTINCT i.value) AS indexes
                FROM audit_event e
                CROSS JOIN LATERAL jsonb_array_elements(e.details -> 'indexes') AS i(value)
               WHERE e.action = 'DATASET_UPDATED' AND jsonb_typeof(e.details -> 'indexes') = 'array'
               GROUP BY e.dataset_id) declared
       WHERE declared.dataset_id = d.id`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE dataset DROP COLUMN declared_indexes`);
  }
}
