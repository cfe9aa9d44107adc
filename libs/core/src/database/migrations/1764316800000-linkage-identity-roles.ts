import type { MigrationInterface, QueryRunner } from 'typeorm';

const ROLES_BEFORE = `'FIRST_NAME', 'MIDDLE_NAME', 'LAST_NAME', 'DATE_OF_BIRTH', 'SEX', 'SSN', 'ZIP'`;

/**
 * Linkage on data it was not tuned for: the identity roles ID_NUMBER, ADDRESS and CITY; a run's
 * intermediate results logged, so that a PostgreSQL crash in the middle of a run loses no run (the
 * run resumes from its committed units).
 */
export class LinkageIdentityRoles1764316800000 implements MigrationInterface {
  name = 'LinkageIdentityRoles1764316800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE dataset_field DROP CONSTRAINT dataset_field_identity_check`);
    await q.query(`
      ALTER TABLE dataset_field ADD CONSTRAINT dataset_field_identity_check
        CHECK (identity IN (${ROLES_BEFORE}, 'ID_NUMBER', 'ADDRESS', 'CITY'))`);
    await q.query(`ALTER TABLE linkage_blob SET LOGGED`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE linkage_blob SET UNLOGGED`);
    await q.query(`ALTER TABLE dataset_field DROP CONSTRAINT dataset_field_identity_check`);
    await q.query(`
      ALTER TABLE dataset_field ADD CONSTRAINT dataset_field_identity_check
        CHECK (identity IN (${ROLES_BEFORE}))`);
  }
}
