import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource, type EntityManager } from 'typeorm';
import { Database, LOGGER } from '@broker/core';
import { generateApiKey, hashApiKey, keyPrefix } from './api-key';
import type { Principal } from './request-context';
import type { Role } from './role.enum';

interface PrincipalRow {
  user_id: string;
  email: string;
  role: Role;
  agency_id: string | null;
  api_key_id: string;
  invitation: boolean;
}

/** API keys: issuing them, and turning a presented key into a {@link Principal}. */
@Injectable()
export class AuthService {
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
    if (presentedKey.length < 16 || presentedKey.length > 512) return null;
    const rows: PrincipalRow[] = await this.dataSource.query(
      `SELECT u.id AS user_id, u.email, u.role, u.agency_id, k.id AS api_key_id, k.invitation
         FROM api_key k JOIN app_user u ON u.id = k.user_id
        WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.deactivated_at IS NULL`,
      [hashApiKey(presentedKey)],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      userId: row.user_id,
      email: row.email,
      role: row.role,
      agencyId: row.agency_id,
      apiKeyId: row.api_key_id,
      invitation: row.invitation,
    };
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

  /** Revokes every key of a user inside the caller's transaction; they stop on the next request. */
  async revokeKeys(manager: EntityManager, userId: string): Promise<void> {
    await manager.query(`UPDATE api_key SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, [
      userId,
    ]);
  }

  /**
   * Creates the operator whose API key is `token` when no operator exists yet
   * (`BROKER_BOOTSTRAP_TOKEN`). Concurrent brokers create one operator between them.
   */
  async ensureBootstrapOperator(token: string | undefined): Promise<boolean> {
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
      this.logger.info({ userId: user.id }, 'created the bootstrap operator from BROKER_BOOTSTRAP_TOKEN');
      return true;
    });
  }
}
