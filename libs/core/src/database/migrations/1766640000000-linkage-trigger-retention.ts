import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A linkage run may be started by retention (`trigger = 'RETENTION'`): a retention batch that
 * destroys records the run in force had assigned to persons requests a run, so that the persons it
 * grouped through them go. Widens the CHECK on `linkage_run.trigger` (the linkage migration's).
 *
 * `down` restores the narrower rule for the runs it records from then on; runs that retention
 * already started keep their trigger (what started them is history), so the constraint is then
 * left unvalidated (`NOT VALID`), and validated as before when there are none.
 */
export class LinkageTriggerRetention1766640000000 implements MigrationInterface {
  name = 'LinkageTriggerRetention1766640000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_run DROP CONSTRAINT linkage_run_trigger_check`);
    await q.query(
      `ALTER TABLE linkage_run ADD CONSTRAINT linkage_run_trigger_check
         CHECK (trigger IN ('MANUAL', 'INGESTION', 'RETENTION'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_run DROP CONSTRAINT linkage_run_trigger_check`);
    await q.query(
      `ALTER TABLE linkage_run ADD CONSTRAINT linkage_run_trigger_check
         CHECK (trigger IN ('MANUAL', 'INGESTION')) NOT VALID`,
    );
    const kept = (await q.query(
      `SELECT 1 FROM linkage_run WHERE trigger = 'RETENTION' LIMIT 1`,
    )) as unknown[];
    if (!kept.length) await q.query(`ALTER TABLE linkage_run VALIDATE CONSTRAINT linkage_run_trigger_check`);
  }
}
