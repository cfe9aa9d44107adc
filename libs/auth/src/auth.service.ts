import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, type EntityManager } from 'typeorm';
import { Database, LOGGER } from '@broker/core';
import { generateApiKey, hashApiKey, keyPrefix } from './api-key';
import type { Principal } from './request-context';
import { Role } from './role.enum';

interface PrincipalRow {
  user_id: string;
  email: string;
  role: Role;
  agency_id: string | null;
  api_key_id: string;
  invitation: boolean;
}

/** The one rule of a key that works: not revoked, and its user not deactivated (`k`, `u`). */
const KEY_WORKS = 'k.revoked_at IS NULL AND u.deactivated_at IS NULL';

/** Principals remembered per instance, at most this many (the oldest forgotten first). */
const REMEMBERED_MAX = 10_000;
/** A bootstrap token shorter than this works (the contract takes any value) but is warned about. */
const BOOTSTRAP_TOKEN_ADVISED_LENGTH = 24;

/** API keys: issuing them, and turning a presented key into a {@link Principal}. */
@Injectable()
export class AuthService {
  /** Key hash → the principal it was last authenticated as, for {@link remembered}. */
  private readonly recent = new Map<string, Principal>();

  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * The principal of a presented key, or null when the key is unknown or revoked or its user is
   * deactivated. Read from the database on every request, so a deactivation or a rotation through
   * any instance stops the old key on the next request everywhere.
   */
  async authenticate(presentedKey: string): Promise<Principal | null> {
    if (presentedKey.length === 0 || presentedKey.length > 512) return null;
    const keyHash = hashApiKey(presentedKey);
    const rows: PrincipalRow[] = await this.dataSource.query(
      `SELECT u.id AS user_id, u.email, u.role, u.agency_id, k.id AS api_key_id, k.invitation
         FROM api_key k JOIN app_user u ON u.id = k.user_id
        WHERE k.key_hash = $1 AND ${KEY_WORKS}`,
      [keyHash],
    );
    const row = rows[0];
    if (!row) {
      this.recent.delete(keyHash.toString('hex'));
      return null;
    }
    const principal: Principal = {
      userId: row.user_id,
      email: row.email,
      role: row.role,
      agencyId: row.agency_id,
      apiKeyId: row.api_key_id,
      invitation: row.invitation,
    };
    this.remember(keyHash.toString('hex'), principal);
    return principal;
  }

  /**
   * The principal this instance last authenticated `presentedKey` as, without asking the database,
   * or null. It is a claim, not an authentication: whoever acts on it must check, in the same
   * snapshot as what it reads, that the key still works as that principal ({@link keyWorksSql}),
   * or call {@link stillWorks} first. Only an analyst's working keys are remembered.
   */
  remembered(presentedKey: string): Principal | null {
    if (presentedKey.length === 0 || presentedKey.length > 512) return null;
    return this.recent.get(hashApiKey(presentedKey).toString('hex')) ?? null;
  }

  /**
   * SQL that is true while the principal's key works and still belongs to that user, role and
   * agency; `param` adds a value as a parameter and returns its placeholder.
   */
  keyWorksSql(principal: Principal, param: (value: unknown, type: string) => string): string {
    return `EXISTS (SELECT 1 FROM api_key k JOIN app_user u ON u.id = k.user_id
      WHERE k.id = ${param(principal.apiKeyId, 'uuid')} AND u.id = ${param(principal.userId, 'uuid')}
        AND u.role = ${param(principal.role, 'text')}
        AND u.agency_id IS NOT DISTINCT FROM ${param(principal.agencyId, 'uuid')}
        AND NOT k.invitation AND ${KEY_WORKS})`;
  }

  /** Whether a remembered principal's key still works (one round trip); forgets it if not. */
  async stillWorks(principal: Principal): Promise<boolean> {
    const values: unknown[] = [];
    const param = (value: unknown, type: string) => {
      values.push(value);
      return `$${values.length}::${type}`;
    };
    const [row] = await this.dataSource.query<{ works: boolean }[]>(
      `SELECT ${this.keyWorksSql(principal, param)} AS works`,
      values,
    );
    if (!row.works) this.forget(principal);
    return row.works;
  }

  /** Forgets a remembered principal (its key stopped working). */
  forget(principal: Principal): void {
    for (const [hash, remembered] of this.recent) {
      if (remembered.apiKeyId === principal.apiKeyId) this.recent.delete(hash);
    }
  }

  private remember(keyHash: string, principal: Principal) {
    if (principal.role !== Role.ANALYST || principal.invitation) return;
    this.recent.delete(keyHash);
    if (this.recent.size >= REMEMBERED_MAX) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(keyHash, principal);
  }

  /**
   * Issues a new key for a user inside the caller's transaction; the plain key is returned once.
   * An `invitation` works for `me` and `rotateApiKey` only, until its owner rotates it.
   */
  async issueKey(
    manager: EntityManager,
    userId: string,
    key = generateApiKey(),
    invitation = false,
  ): Promise<string> {
    await manager.query(
      `INSERT INTO api_key (user_id, key_hash, prefix, invitation) VALUES ($1, $2, $3, $4)`,
      [userId, hashApiKey(key), keyPrefix(key), invitation],
    );
    return key;
  }

  /**
   * Revokes every key of a user inside the caller's transaction; they stop on the next request. A
   * release read under one of them and not yet recorded when this commits is recorded never, and its
   * request is decided again: the data plane's append checks, and holds, the row of the key it read
   * under (ReleaseCondition in the audit library). The policy stamp does not move: it would make
   * every agency's policy load again and withdraw every release in flight, so that a user rotating
   * its own key in a loop would starve every other agency's requests. Call it before the
   * transaction's audit event (the appends take the key's row before the chain head's).
   */
  async revokeKeys(manager: EntityManager, userId: string): Promise<void> {
    await manager.query(`UPDATE api_key SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, [
      userId,
    ]);
  }

  /**
   * Creates the operator whose API key is `token` when no operator exists yet
   * (`BROKER_BOOTSTRAP_TOKEN`). Concurrent brokers create one operator between them. `record`
   * appends the change's audit event, last in the transaction that makes it (the audit library
   * builds on this one: see UserService.ensureBootstrapOperator).
   */
  async ensureBootstrapOperator(
    token: string | undefined,
    record: (manager: EntityManager, userId: string) => Promise<unknown>,
  ): Promise<boolean> {
    if (!token) {
      const [row] = await this.dataSource.query<{ any: boolean }[]>(
        `SELECT EXISTS (SELECT 1 FROM app_user WHERE role = 'OPERATOR') AS any`,
      );
      if (!row.any) {
        this.logger.warn('no operator exists: set BROKER_BOOTSTRAP_TOKEN and restart to create one');
      }
      return false;
    }
    return this.db.transaction(async ({ manager }) => {
      await manager.query(`SELECT pg_advisory_xact_lock(7305118222)`);
      const existing: unknown[] = await manager.query(
        `SELECT 1 FROM app_user WHERE role = 'OPERATOR' LIMIT 1`,
      );
      if (existing.length) return false;
      const [user] = await manager.query<{ id: string }[]>(
        `INSERT INTO app_user (email, display_name, role) VALUES ('operator@broker.local', 'Platform operator', 'OPERATOR')
         ON CONFLICT DO NOTHING RETURNING id`,
      );
      if (!user) return false;
      await this.issueKey(manager, user.id, token);
      await record(manager, user.id);
      this.logger.info({ userId: user.id }, 'created the bootstrap operator from BROKER_BOOTSTRAP_TOKEN');
      if (token.length < BOOTSTRAP_TOKEN_ADVISED_LENGTH) {
        this.logger.warn(
          `BROKER_BOOTSTRAP_TOKEN is shorter than ${BOOTSTRAP_TOKEN_ADVISED_LENGTH} characters: sign in with it and call rotateApiKey to replace it with a strong key`,
        );
      }
      return true;
    });
  }
}
