import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The daily budget of perturbed aggregates (docs/disclosure-control.md): how many each analyst asked
 * under each agreement on each UTC day. One row per (user, agreement, day), incremented atomically.
 */
export class AggregateBudget1764600000000 implements MigrationInterface {
  name = 'AggregateBudget1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE aggregate_budget (
        user_id uuid NOT NULL,
        agreement_id uuid NOT NULL,
        day date NOT NULL,
        used int NOT NULL,
        PRIMARY KEY (user_id, agreement_id, day)
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE aggregate_budget`);
  }
}
