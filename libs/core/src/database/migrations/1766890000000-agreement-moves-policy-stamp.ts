import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The policy stamps move in the database, with the change of an agreement that moves them: a version
 * coming into force (`in_force_version`) or a revocation (`revoked_at`), whoever writes it.
 *
 * Brokers of the release before the stamps per agency (PolicyStampPerAgency) move the county's stamp
 * only. During a rolling upgrade one of them that revoked an agreement, or brought a version into
 * force, left the recipient's stamp where it was, so brokers of the later release went on deciding
 * the recipient's requests under the agreements they had cached, and recorded their releases (their
 * appends check the recipient's stamp only): rows released under an agreement revoked, until that
 * broker restarted or another change moved the stamp. The trigger moves the recipient's stamp (both
 * recipients', in the order of their ids, if it ever changed) and then the county's, in the
 * transaction of the change and at its statement, before its audit event: the order of the locks
 * the appends take (stamps, then the chain head) holds.
 *
 * `move_policy_stamps` is the one way a stamp moves, by the trigger or by hand (movePolicyStamp in
 * libs/core); an agency without its row is a broken database, refused.
 *
 * An agency that a broker of the earlier release created while PolicyStampPerAgency ran (after its
 * rows were written, before its trigger was created: each migration is a transaction of its own, and
 * the trigger waits for the agency's to commit) has no row: every release to it would be withdrawn
 * and every change of its agreements refused. It gets its row here, at the county's stamp.
 */
export class AgreementMovesPolicyStamp1766890000000 implements MigrationInterface {
  name = 'AgreementMovesPolicyStamp1766890000000';

  async up(q: QueryRunner): Promise<void> {
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
  }
}
