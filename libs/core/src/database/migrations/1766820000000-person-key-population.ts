import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A personKey lookup table files the linked records of one grant's population only: one table per
 * linkage run, agreement, scope (recipient agency and purpose) and dataset, of the records the
 * grant's row filter admits (`row_filter`, the filter it was built under, and `population`, a digest
 * of it, '' for a grant without one). A filter on a person then reads none of that person's records
 * the agreement leaves out (docs/disclosure-control.md, "Timing"). A statement reads only the table of
 * its own agreement and population; a table built under another filter (an earlier version) is
 * replaced by the next build. The tables built before hold every linked record and name no
 * agreement: they are dropped (derived data), and built again after the next filter on personKey.
 * `population` and `agreement_id` have no default, so that a broker of an earlier release, which
 * writes neither, builds no table that files every record.
 */
export class PersonKeyPopulation1766820000000 implements MigrationInterface {
  name = 'PersonKeyPopulation1766820000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM person_key_scope`);
    await q.query(
      `ALTER TABLE person_key_scope
         ADD COLUMN agreement_id uuid NOT NULL REFERENCES agreement (id) ON DELETE CASCADE,
         ADD COLUMN population text NOT NULL,
         ADD COLUMN row_filter jsonb,
         DROP CONSTRAINT person_key_scope_run_id_scope_dataset_id_key,
         ADD CONSTRAINT person_key_scope_table_key UNIQUE (run_id, agreement_id, scope, dataset_id)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // A table of a population does not file every linked record: older releases would read it as if it did.
    await q.query(`DELETE FROM person_key_scope`);
    await q.query(
      `ALTER TABLE person_key_scope
         DROP CONSTRAINT person_key_scope_table_key,
         DROP COLUMN agreement_id, DROP COLUMN population, DROP COLUMN row_filter,
         ADD CONSTRAINT person_key_scope_run_id_scope_dataset_id_key UNIQUE (run_id, scope, dataset_id)`,
    );
  }
}
