import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit chain vouches for users and their API keys from now on: every event that changes an
 * account seals its digest (`details.accounts`), and verification checks the tables against it. The
 * accounts that exist already were made by events that sealed nothing, so nothing in the chain can
 * vouch for how they came to be. This migration lists them (`account_found`); the first broker
 * start after it, while the chain vouches for no account yet, appends `ACCOUNTS_VOUCHED` events that
 * vouch for them as that start finds them ("vouched as found"), and empties the list. Verification
 * reports any account the list still names. Also a partial index of the accounts' events, which
 * verification reads on every run (the names are those of ACCOUNT_ACTIONS in libs/audit).
 */
export class AccountsVouched1766300000000 implements MigrationInterface {
  name = 'AccountsVouched1766300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE account_found (user_id uuid PRIMARY KEY)`);
    await q.query(`INSERT INTO account_found (user_id) SELECT id FROM app_user`);
    await q.query(
      `CREATE INDEX audit_event_account_idx ON audit_event (seq)
        WHERE action IN ('USER_CREATED', 'USER_DEACTIVATED', 'API_KEY_ROTATED', 'ACCOUNTS_VOUCHED')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX audit_event_account_idx`);
    await q.query(`DROP TABLE account_found`);
  }
}
