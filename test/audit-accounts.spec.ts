import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { QueryRunner } from 'typeorm';
import { generateApiKey, hashApiKey } from '@broker/auth';
import { TestBroker, createTestDatabase } from '@broker/testing';
import { AccountsVouched1766300000000 } from '../libs/core/src/database/migrations/1766300000000-accounts-vouched';
import { runAuditVerify } from '../scripts/audit-verify';
import { expectBrokenAt } from './audit-tamper';

/** The account digest as the chain defines it, written out here so the test checks its definition. */
const DIGEST = `encode(sha256(convert_to(jsonb_build_object(
    'id', u.id, 'agencyId', u.agency_id, 'email', u.email, 'role', u.role,
    'deactivated', u.deactivated_at IS NOT NULL,
    'deactivatedAt', CASE WHEN isfinite(u.deactivated_at)
                          THEN (extract(epoch FROM u.deactivated_at) * 1000000)::bigint::text END,
    'keys', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', k.id, 'keyHash', encode(k.key_hash, 'hex'),
               'prefix', k.prefix, 'invitation', k.invitation, 'revoked', k.revoked_at IS NOT NULL,
               'revokedAt', CASE WHEN isfinite(k.revoked_at)
                                 THEN (extract(epoch FROM k.revoked_at) * 1000000)::bigint::text END)
               ORDER BY k.id), '[]'::jsonb) FROM api_key k WHERE k.user_id = u.id))::text, 'UTF8')), 'hex')`;

/**
 * Users and their API keys decide who may do what; the audit chain vouches for them. A DBA who adds a
 * STEWARD or an AUDITOR, adds a key to an existing user, changes a role or an agency, undoes a
 * revocation or a deactivation, without the broker, breaks the chain's verification, through the
 * API and the offline script alike, at the event that last vouched for the account (past the log for
 * an account no event vouches for); each change put back, it verifies again.
 */
describe('audit chain: the users and keys it vouches for', () => {
  let broker: TestBroker;
  let auditor: { id: string; apiKey: string };
  let agency: { id: string };
  let other: { id: string };
  let steward: { id: string; apiKey: string };
  let analyst: { id: string; apiKey: string };

  const verify = () => broker.verifyAuditChain(auditor.apiKey);
  const head = () => broker.auditHeadSeq();
  /** The seq of the latest event that vouches for a user's account. */
  const vouchedAt = async (userId: string) =>
    Number(
      (
        await broker.query<{ seq: string }>(
          `SELECT max(seq)::text AS seq FROM audit_event WHERE details->'accounts' ? $1`,
          [userId],
        )
      )[0].seq,
    );
  const brokenAt = (seq: number, change: () => Promise<unknown>, undo: () => Promise<unknown>) =>
    expectBrokenAt(broker, auditor.apiKey, seq, change, undo);
  /** A statement run as a DBA would, straight on the tables. */
  const sql =
    (text: string, ...params: unknown[]) =>
    () =>
      broker.query(text, params);
  const all =
    (...steps: (() => Promise<unknown>)[]) =>
    async () => {
      for (const step of steps) await step();
    };

  beforeAll(async () => {
    broker = await TestBroker.start({ LABEL: 'auditacc' });
    auditor = await broker.createUser({ role: 'AUDITOR' });
    agency = await broker.createAgency('Probation');
    other = await broker.createAgency('Courts');
    steward = await broker.createUser({ agencyId: agency.id, role: 'STEWARD' });
    analyst = await broker.createUser({ agencyId: agency.id, role: 'ANALYST' });
  });
  afterAll(() => broker.close());

  it('seals each account as stored in the event that changed it, the bootstrap operator’s too', async () => {
    const rows = await broker.query<{ action: string; actor: string | null; sealed: string; stored: string }>(
      `SELECT e.action, e.actor_user_id AS actor, e.details->'accounts'->>u.id::text AS sealed, ${DIGEST} AS stored
         FROM app_user u JOIN audit_event e ON e.details->'accounts' ? u.id::text
        WHERE u.role = 'OPERATOR' ORDER BY e.seq`,
    );
    expect(rows).toEqual([
      {
        action: 'USER_CREATED',
        actor: null,
        sealed: expect.stringMatching(/^[0-9a-f]{64}$/),
        stored: rows[0].stored,
      },
    ]);
    expect(rows[0].sealed).toBe(rows[0].stored);
    // The analyst's latest event (created by its steward) holds its account as stored.
    const [analystRow] = await broker.query<{ sealed: string; stored: string }>(
      `SELECT e.details->'accounts'->>u.id::text AS sealed, ${DIGEST} AS stored
         FROM app_user u JOIN audit_event e ON e.seq = $2 WHERE u.id = $1`,
      [analyst.id, await vouchedAt(analyst.id)],
    );
    expect(analystRow.sealed).toBe(analystRow.stored);
    expect(await verify()).toEqual({ valid: true, checked: await head(), firstBrokenSeq: null });
  });

  it('breaks past the log where a user was inserted in the database', async () => {
    const id = '00000000-0000-4000-8000-00000000a001';
    await brokenAt(
      (await head()) + 1,
      sql(
        `INSERT INTO app_user (id, agency_id, email, role) VALUES ($1, $2, 'mole@example.org', 'STEWARD')`,
        id,
        agency.id,
      ),
      sql(`DELETE FROM app_user WHERE id = $1`, id),
    );
    // An AUDITOR of the oversight agency, with a key that works.
    const key = generateApiKey();
    const insertWatcher = sql(
      `WITH u AS (INSERT INTO app_user (id, agency_id, email, role)
                  SELECT $1, agency_id, 'watcher@example.org', 'AUDITOR' FROM app_user WHERE id = $2 RETURNING id)
       INSERT INTO api_key (user_id, key_hash, prefix) SELECT id, $3, 'dsb_' FROM u`,
      id,
      auditor.id,
      hashApiKey(key),
    );
    await brokenAt((await head()) + 1, insertWatcher, sql(`DELETE FROM app_user WHERE id = $1`, id));
    // The key works until then: the gap was real.
    await insertWatcher();
    try {
      expect((await broker.gqlOk(key, `{ me { role } }`)).me).toEqual({ role: 'AUDITOR' });
    } finally {
      await sql(`DELETE FROM app_user WHERE id = $1`, id)();
    }
  });

  it('breaks at the account’s latest event where a role or an agency was changed', async () => {
    await brokenAt(
      await vouchedAt(analyst.id),
      sql(`UPDATE app_user SET role = 'STEWARD' WHERE id = $1`, analyst.id),
      sql(`UPDATE app_user SET role = 'ANALYST' WHERE id = $1`, analyst.id),
    );
    await brokenAt(
      await vouchedAt(steward.id),
      sql(`UPDATE app_user SET agency_id = $2 WHERE id = $1`, steward.id, other.id),
      sql(`UPDATE app_user SET agency_id = $2 WHERE id = $1`, steward.id, agency.id),
    );
  });

  it('breaks at the account’s latest event where a key was added to an existing user', async () => {
    const hash = hashApiKey(generateApiKey());
    await brokenAt(
      await vouchedAt(steward.id),
      sql(`INSERT INTO api_key (user_id, key_hash, prefix) VALUES ($1, $2, 'dsb_')`, steward.id, hash),
      sql(`DELETE FROM api_key WHERE user_id = $1 AND key_hash = $2`, steward.id, hash),
    );
  });

  it('keeps verifying through rotations and deactivations, and breaks where one is undone', async () => {
    // A rotation through the API revokes the old key and vouches for the account as it leaves it.
    const rotated = await broker.rotate(analyst.apiKey);
    expect(await verify()).toEqual({ valid: true, checked: await head(), firstBrokenSeq: null });
    const rotation = await vouchedAt(analyst.id);
    const [{ action }] = await broker.query<{ action: string }>(
      `SELECT action FROM audit_event WHERE seq = $1`,
      [rotation],
    );
    expect(action).toBe('API_KEY_ROTATED');
    // The old key un-revoked.
    await broker.query(
      `CREATE TABLE saved_keys AS SELECT id, revoked_at FROM api_key WHERE user_id = $1 AND revoked_at IS NOT NULL`,
      [analyst.id],
    );
    await brokenAt(
      rotation,
      sql(`UPDATE api_key SET revoked_at = NULL WHERE id IN (SELECT id FROM saved_keys)`),
      sql(`UPDATE api_key k SET revoked_at = s.revoked_at FROM saved_keys s WHERE s.id = k.id`),
    );
    await broker.query(`DROP TABLE saved_keys`);

    // A deactivation through the API; undone in the database.
    await broker.gqlOk(steward.apiKey, `mutation($id: ID!) { deactivateUser(id: $id) { id } }`, {
      id: analyst.id,
    });
    expect(await verify()).toEqual({ valid: true, checked: await head(), firstBrokenSeq: null });
    const deactivation = await vouchedAt(analyst.id);
    await broker.query(
      `CREATE TABLE saved_state AS SELECT u.deactivated_at, (SELECT revoked_at FROM api_key WHERE user_id = u.id
         AND prefix = $2) AS revoked_at FROM app_user u WHERE u.id = $1`,
      [analyst.id, rotated.slice(0, 10)],
    );
    await brokenAt(
      deactivation,
      sql(`UPDATE app_user SET deactivated_at = NULL WHERE id = $1`, analyst.id),
      sql(
        `UPDATE app_user SET deactivated_at = (SELECT deactivated_at FROM saved_state) WHERE id = $1`,
        analyst.id,
      ),
    );
    await brokenAt(
      deactivation,
      sql(
        `UPDATE api_key SET revoked_at = NULL WHERE user_id = $1 AND prefix = $2`,
        analyst.id,
        rotated.slice(0, 10),
      ),
      sql(
        `UPDATE api_key SET revoked_at = (SELECT revoked_at FROM saved_state) WHERE user_id = $1 AND prefix = $2`,
        analyst.id,
        rotated.slice(0, 10),
      ),
    );
    await broker.query(`DROP TABLE saved_state`);
  });

  it('breaks where an invitation was made a full key, and where a vouched user is gone', async () => {
    const invited = await broker.createAs(broker.operatorKey, { agencyId: null, role: 'OPERATOR' });
    expect(await verify()).toEqual({ valid: true, checked: await head(), firstBrokenSeq: null });
    const created = await vouchedAt(invited.id);
    await brokenAt(
      created,
      sql(`UPDATE api_key SET invitation = false WHERE user_id = $1`, invited.id),
      sql(`UPDATE api_key SET invitation = true WHERE user_id = $1`, invited.id),
    );
    await brokenAt(
      created,
      all(
        sql(`CREATE TABLE saved_user AS SELECT * FROM app_user WHERE id = $1`, invited.id),
        sql(`CREATE TABLE saved_user_keys AS SELECT * FROM api_key WHERE user_id = $1`, invited.id),
        sql(`DELETE FROM app_user WHERE id = $1`, invited.id),
      ),
      all(
        sql(`INSERT INTO app_user SELECT * FROM saved_user`),
        sql(`INSERT INTO api_key SELECT * FROM saved_user_keys`),
        sql(`DROP TABLE saved_user, saved_user_keys`),
      ),
    );
  });
});

/**
 * A database whose users and keys predate the chain's vouching for them: the accounts-vouched
 * migration lists them, and the first start vouches for them as found, once; an account added to the
 * list by hand later is never vouched for.
 */
describe('audit chain: accounts that predate its vouching for them', () => {
  const token = `op_${randomBytes(24).toString('base64url')}`;
  let url: string;

  /** Runs statements on the database directly, as the old broker or a DBA would. */
  async function onDatabase<T>(run: (client: Client) => Promise<T>): Promise<T> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    url = await createTestDatabase('auditold');
    const migration = new AccountsVouched1766300000000();
    await onDatabase(async (client) => {
      const runner = { query: (sql: string) => client.query(sql) } as unknown as QueryRunner;
      // The database as it was before the migration, with accounts an older broker made.
      await migration.down(runner);
      await client.query(
        `WITH a AS (INSERT INTO agency (name) VALUES ('Sheriff') RETURNING id),
              op AS (INSERT INTO app_user (email, role) VALUES ('operator@broker.local', 'OPERATOR') RETURNING id),
              st AS (INSERT INTO app_user (agency_id, email, role) SELECT id, 'chief@sheriff.example', 'STEWARD'
                       FROM a RETURNING id)
         INSERT INTO api_key (user_id, key_hash, prefix)
         SELECT id, $1::bytea, 'op_' FROM op UNION ALL SELECT id, $2::bytea, 'dsb_' FROM st`,
        [hashApiKey(token), hashApiKey('dsb_old-steward-key')],
      );
      await migration.up(runner);
    });
  });

  it('vouches for them as found at the first start, and for nothing added to the list later', async () => {
    let broker = await TestBroker.start({ DATABASE_URL: url, BROKER_BOOTSTRAP_TOKEN: token });
    try {
      const events = await broker.query<{
        action: string;
        row_count: number;
        accounts: number;
        reason: string;
      }>(
        `SELECT action, row_count, (SELECT count(*)::int FROM jsonb_object_keys(details->'accounts')) AS accounts,
                reason FROM audit_event WHERE details ? 'accounts' ORDER BY seq`,
      );
      expect(events).toEqual([
        {
          action: 'ACCOUNTS_VOUCHED',
          row_count: 2,
          accounts: 2,
          reason: expect.stringMatching(/^vouched as found/),
        },
      ]);
      expect(await broker.query(`SELECT * FROM account_found`)).toEqual([]);
      expect(await runAuditVerify(url)).toMatchObject({ valid: true, firstBrokenSeq: null });
    } finally {
      await broker.stop();
    }
    // A DBA's user, listed as found by hand, and a restart: it stays unvouched, and reported.
    const seq = await onDatabase(async (client) => {
      await client.query(
        `WITH u AS (INSERT INTO app_user (agency_id, email, role)
                    SELECT agency_id, 'deputy@sheriff.example', 'STEWARD' FROM app_user WHERE role = 'STEWARD'
                    RETURNING id)
         INSERT INTO account_found (user_id) SELECT id FROM u`,
      );
      return Number(
        (await client.query<{ seq: string }>(`SELECT seq::text AS seq FROM audit_head`)).rows[0].seq,
      );
    });
    broker = await TestBroker.start({ DATABASE_URL: url, BROKER_BOOTSTRAP_TOKEN: token });
    try {
      const [{ n }] = await broker.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_event WHERE action = 'ACCOUNTS_VOUCHED'`,
      );
      expect(n).toBe(1);
      expect(await runAuditVerify(url)).toMatchObject({ valid: false, firstBrokenSeq: seq + 1 });
    } finally {
      await broker.close();
    }
  });
});
