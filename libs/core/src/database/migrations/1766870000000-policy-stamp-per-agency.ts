import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A policy stamp per recipient agency (`agency_policy_stamp`), where there was one for the county:
 * an agency's policy is the agreements of which it is the recipient, so a change in force moves the
 * recipient's stamp only, and reloads and withdraws the requests of that agency only. With one
 * stamp, the stewards of two agencies bringing an agreement into force and revoking it in a loop
 * made every other agency's requests be decided again, and end with 503.
 *
 * Every agency has its row from its creation (a trigger), so that an append checking a stamp always
 * finds the row to hold (see ReleaseCondition): a row inserted by a change under way would not be
 * waited for. The rows start at the county's stamp. The county's stamp (`policy_stamp`) is still
 * moved with every agency's, for the instances of an earlier release still serving during a rolling
 * upgrade, which read it; nothing of this release reads it.
 */
export class PolicyStampPerAgency1766870000000 implements MigrationInterface {
  name = 'PolicyStampPerAgency1766870000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE agency_policy_stamp (
        agency_id uuid PRIMARY KEY REFERENCES agency (id) ON DELETE CASCADE,
        stamp bigint NOT NULL DEFAULT 0 CHECK (stamp >= 0)
      )`);
    await q.query(`
      INSERT INTO agency_policy_stamp (agency_id, stamp)
      SELECT a.id, s.stamp FROM agency a CROSS JOIN policy_stamp s WHERE s.id = 1`);
    await q.query(`
      CREATE FUNCTION agency_policy_stamp_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO agency_policy_stamp (agency_id, stamp)
        SELECT NEW.id, stamp FROM policy_stamp WHERE id = 1;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER agency_policy_stamp_row AFTER INSERT ON agency
      FOR EACH ROW EXECUTE FUNCTION agency_policy_stamp_row()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER agency_policy_stamp_row ON agency`);
    await q.query(`DROP FUNCTION agency_policy_stamp_row()`);
    await q.query(`DROP TABLE agency_policy_stamp`);
  }
}
