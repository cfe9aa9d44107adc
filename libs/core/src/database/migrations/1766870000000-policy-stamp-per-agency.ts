import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A policy stamp per recipient agency (`agency_policy_stamp`), where there was one for the county:
 * an agency's policy is the agreements of which it is the recipient, so a change in force moves the
 * recipient's stamp only, and reloads and withdraws the requests of that agency only. With one
 * stamp, the stewards of two agencies bringing an agreement into force and revoking it in a loop
 * made every other agency's requests be decided again, and end with 503.
 *
 * Every agency has its row from its creation (a trigger on `agency`), so that an append checking a
 * stamp always finds the row to hold (see ReleaseCondition): a row inserted by a change under way
 * would not be waited for. The migration's one transaction locks `agency` against writes at its
 * first statement (the table's foreign key) until it commits: an agency being created then is
 * waited for, and read by the statement that writes the rows of the agencies already there; one
 * created later waits for the migration to commit, and fires the trigger
 * (`test/policy-stamp-migration.spec.ts` creates both). The rows start at the county's stamp.
 *
 * The stamps move in the database, with the change of an agreement that moves them: a version
 * coming into force (`in_force_version`) or a revocation (`revoked_at`), whoever writes it (a
 * trigger on `agreement`, calling `move_policy_stamps`, the one way a stamp moves: by hand too, see
 * movePolicyStamp in libs/core). Brokers of the earlier release, during a rolling upgrade, write the
 * agreement and move the county's stamp only; were the recipient's left as it was, brokers of this
 * release would go on answering the recipient under the agreements they had cached, a revoked one
 * included. The trigger moves the recipient's stamp (both recipients', in the order of their ids,
 * were it ever changed) and then the county's, in the transaction of the change and at its
 * statement, before its audit event: the order of the locks the appends take (stamps, then the
 * chain head) holds. The county's stamp (`policy_stamp`) still moves with every agency's, for the
 * brokers of the earlier release, which read it; nothing of this release reads it. An agency
 * without its row is a broken database: its changes are refused.
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
      CREATE FUNCTION agency_policy_stamp_row() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO agency_policy_stamp (agency_id, stamp)
        SELECT NEW.id, stamp FROM policy_stamp WHERE id = 1;
        RETURN NEW;
      END $$`);
    await q.query(`
      CREATE TRIGGER agency_policy_stamp_row AFTER INSERT ON agency
      FOR EACH ROW EXECUTE FUNCTION agency_policy_stamp_row()`);
    await q.query(`
      INSERT INTO agency_policy_stamp (agency_id, stamp)
      SELECT a.id, s.stamp FROM agency a CROSS JOIN policy_stamp s WHERE s.id = 1
      ON CONFLICT (agency_id) DO NOTHING`);
    await q.query(`
      CREATE FUNCTION move_policy_stamps(agencies uuid[]) RETURNS void LANGUAGE plpgsql AS $$
      DECLARE
        agency uuid;
      BEGIN
        FOR agency IN SELECT DISTINCT a FROM unnest(agencies) AS a WHERE a IS NOT NULL ORDER BY a LOOP
          UPDATE agency_policy_stamp SET stamp = stamp + 1 WHERE agency_id = agency;
          IF NOT FOUND THEN
            RAISE EXCEPTION 'agency % has no policy stamp', agency;
          END IF;
        END LOOP;
        UPDATE policy_stamp SET stamp = stamp + 1 WHERE id = 1;
      END $$`);
    await q.query(`
      CREATE FUNCTION agreement_moves_policy_stamps() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM move_policy_stamps(ARRAY[OLD.recipient_agency_id, NEW.recipient_agency_id]);
        RETURN NULL;
      END $$`);
    await q.query(`
      CREATE TRIGGER agreement_moves_policy_stamps
      AFTER UPDATE OF in_force_version, revoked_at, recipient_agency_id ON agreement
      FOR EACH ROW WHEN (OLD.in_force_version IS DISTINCT FROM NEW.in_force_version
                         OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
                         OR OLD.recipient_agency_id IS DISTINCT FROM NEW.recipient_agency_id)
      EXECUTE FUNCTION agreement_moves_policy_stamps()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER agreement_moves_policy_stamps ON agreement`);
    await q.query(`DROP FUNCTION agreement_moves_policy_stamps()`);
    await q.query(`DROP FUNCTION move_policy_stamps(uuid[])`);
    await q.query(`DROP TRIGGER agency_policy_stamp_row ON agency`);
    await q.query(`DROP FUNCTION agency_policy_stamp_row()`);
    await q.query(`DROP TABLE agency_policy_stamp`);
  }
}
