import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A HASH lookup table files the records of its agreement's population only: those its row filter
 * admits (`hash_key_scope.row_filter`, the filter it was built under, and `population`, a digest of
 * it; '' and null for every record, as every table built before). A filter through it then reads no
 * record the agreement leaves out, and how a filter finds a value's records (through the table, or
 * hashing in the page's order) depends on the population's records of that value only
 * (docs/disclosure-control.md, "Timing"). A table built under another filter (an earlier version, or
 * before this release) is not read by a statement that asks for this one's; the next filter on it
 * builds it anew.
 */
export class HashKeyPopulation1766700000000 implements MigrationInterface {
  name = 'HashKeyPopulation1766700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `ALTER TABLE hash_key_scope ADD COLUMN population text NOT NULL DEFAULT '', ADD COLUMN row_filter jsonb`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // A table of a population does not file every record: older releases would read it as if it did.
    await q.query(`DELETE FROM hash_key_scope WHERE population <> ''`);
    await q.query(`ALTER TABLE hash_key_scope DROP COLUMN population, DROP COLUMN row_filter`);
  }
}
