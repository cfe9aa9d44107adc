import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The lookup tables of filters on HASH names (libs/registry/src/dataset/hash-lookup.ts): for one
 * agreement, one dataset and one of its fields, each record's row id filed under the first 64 bits
 * of the field's HMAC under the agreement's key. A filter (`eq`, `in`) on the released hash then
 * finds its records by index and computes only their HMACs whole, where without the table it
 * computes the HMAC of every record. The key itself is never stored here, nor in any index.
 *
 * A field whose values each have many records (more than a hundred on average) gets no table: a
 * value would find too many records by it. Its scope row says so (`useful` false), with the counts
 * that decided, and holds no records.
 *
 * A scope row is deleted (its records with it) by every change of its dataset's records (ingestion,
 * retention), and when its agreement is no longer in force; the broker builds it again on the next
 * filter. No foreign key names the dataset's rows: a row id found here is only ever joined back to
 * the dataset's table, whose rows decide.
 */
export class HashKeyIndex1765600000000 implements MigrationInterface {
  name = 'HashKeyIndex1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE hash_key_scope (
        id serial PRIMARY KEY,
        agreement_id uuid NOT NULL REFERENCES agreement (id) ON DELETE CASCADE,
        dataset_id uuid NOT NULL REFERENCES dataset (id) ON DELETE CASCADE,
        field text NOT NULL,
        records bigint NOT NULL,
        distinct_values bigint NOT NULL,
        useful boolean NOT NULL,
        built_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (agreement_id, dataset_id, field)
      )`);
    await q.query(`CREATE INDEX hash_key_scope_dataset_idx ON hash_key_scope (dataset_id)`);
    await q.query(`
      CREATE TABLE hash_key (
        scope_id int NOT NULL REFERENCES hash_key_scope (id) ON DELETE CASCADE,
        prefix bigint NOT NULL,
        rid bigint NOT NULL
      )`);
    // How a filter finds its records (the row ids in the index: no visit of the table's pages).
    await q.query(`CREATE INDEX hash_key_prefix_idx ON hash_key (scope_id, prefix) INCLUDE (rid)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE hash_key`);
    await q.query(`DROP TABLE hash_key_scope`);
  }
}
