import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The daily budget of perturbed aggregates each agreement shares among all its recipient's
 * analysts (docs/disclosure-control.md, rule 8), beside each analyst's own (`aggregate_budget`): a
 * steward who creates more analysts no longer multiplies what one agreement answers in a day. One row
 * per (agreement, day), spent by a guarded upsert that never takes it past the budget, in the same
 * statement as the analyst's.
 *
 * It starts from what the analysts spent on the day of the upgrade (their rows also count attempts
 * refused past their own budget: the day may then start spent, never the other way).
 */
export class AggregateBudgetAgreement1766900000000 implements MigrationInterface {
  name = 'AggregateBudgetAgreement1766900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE aggregate_budget_agreement (
        agreement_id uuid NOT NULL,
        day date NOT NULL,
        used int NOT NULL CHECK (used >= 0),
        PRIMARY KEY (agreement_id, day)
      )`);
    await q.query(`
      INSERT INTO aggregate_budget_agreement (agreement_id, day, used)
      SELECT agreement_id, day, sum(used) FROM aggregate_budget
       WHERE day >= (now() AT TIME ZONE 'UTC')::date
       GROUP BY agreement_id, day`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE aggregate_budget_agreement`);
  }
}
