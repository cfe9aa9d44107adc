import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Whether a HASH lookup table serves filters moves to its own column (`hash_key_scope.serves`), and
 * `useful` keeps the meaning it had in the release before common values (migration hash-key-common):
 * the table files every record of every value. Brokers of that release read a table whenever its
 * `useful` is true and never look at `hash_key_common`; while they run beside newer ones (a rolling
 * upgrade), a table that leaves a value out would make them miss every record of it. So a table that
 * lists a value it does not file says `useful` false: those brokers hash every record for it instead,
 * as for a field not worth a table, and newer ones read `serves`. A table such a broker builds writes
 * no `serves` (null): it files every record, so newer brokers take its `useful`.
 */
export class HashKeyServes1766100000000 implements MigrationInterface {
  name = 'HashKeyServes1766100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE hash_key_scope ADD COLUMN serves boolean`);
    await q.query(`
      UPDATE hash_key_scope hs
         SET serves = hs.useful,
             useful = hs.useful AND NOT EXISTS (SELECT 1 FROM hash_key_common hc WHERE hc.scope_id = hs.id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE hash_key_scope SET useful = COALESCE(serves, useful)`);
    await q.query(`ALTER TABLE hash_key_scope DROP COLUMN serves`);
  }
}
