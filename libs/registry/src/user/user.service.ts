import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import {
  ACCOUNT_ACTIONS,
  AuditAction,
  type AuditEventInput,
  AuditService,
  accountDigestSql,
  auditActor,
  sqlNames,
} from '@broker/audit';
import { AuthService, type RequestContext, Role, asSubject, authorize, canOnAll } from '@broker/auth';
import { badInput, BrokerError, conflict, Database, ErrorCode, notFound } from '@broker/core';
import { cleanText, isUuid } from '../agency/agency.service';
import { isUniqueViolation } from '../registry-errors';
import type { CreateUserInput } from './create-user.input';
import { UserEntity } from './user.entity';

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;
const ROLES: ReadonlySet<string> = new Set(Object.values(Role));

/** The kind of agency AUDITORs belong to (in any case); such an agency is party to no agreement. */
export const OVERSIGHT_KIND = 'oversight';

/** At most this many accounts in one `ACCOUNTS_VOUCHED` event (see UserService.vouchFound). */
const FOUND_PER_EVENT = 1000;

/** A user as lists show it: whether its only key is a pending invitation. */
export type UserView = UserEntity & { invitationPending: boolean };

/**
 * Users (DESIGN §4.1 "Users"). Who may create or deactivate whom is decided by the control
 * ability alone (`authorize` on a {@link UserObject} carrying the facts it needs, read in the same
 * transaction that makes the change); this service reads those facts and writes the change.
 */
@Injectable()
export class UserService {
  constructor(
    private readonly db: Database,
    @InjectRepository(UserEntity) private readonly users: Repository<UserEntity>,
    private readonly dataSource: DataSource,
    private readonly auth: AuthService,
    private readonly audit: AuditService,
  ) {}

  /** The caller's own user. */
  async me(ctx: RequestContext): Promise<UserEntity> {
    const user = await this.users.findOneBy({ id: ctx.principal.userId });
    if (!user) throw notFound('User');
    return user;
  }

  /** One user by id, or null. */
  async findById(id: string): Promise<UserEntity | null> {
    return isUuid(id) ? this.users.findOneBy({ id }) : null;
  }

  /** The users the caller may read: every one (OPERATOR, AUDITOR) or its agency's (STEWARD). */
  async list(ctx: RequestContext): Promise<UserView[]> {
    const { principal } = ctx;
    const all = canOnAll(principal, 'read', 'User');
    if (!all && !principal.agencyId) return [];
    const rows = await this.dataSource.query<
      {
        id: string;
        agency_id: string | null;
        email: string;
        display_name: string | null;
        role: Role;
        created_at: Date;
        deactivated_at: Date | null;
        invitation_pending: boolean;
      }[]
    >(
      `SELECT u.id, u.agency_id, u.email, u.display_name, u.role, u.created_at, u.deactivated_at,
              EXISTS (SELECT 1 FROM api_key k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND k.invitation)
                AS invitation_pending
         FROM app_user u
        ${all ? '' : 'WHERE u.agency_id = $1'}
        ORDER BY u.agency_id NULLS FIRST, u.role, lower(u.email), u.id`,
      all ? [] : [principal.agencyId],
    );
    return rows.map((r) =>
      Object.assign(new UserEntity(), {
        id: r.id,
        agencyId: r.agency_id,
        email: r.email,
        displayName: r.display_name,
        role: r.role,
        createdAt: r.created_at,
        deactivatedAt: r.deactivated_at,
        invitationPending: r.invitation_pending,
      }),
    );
  }

  /** Whether a user's only working key is an invitation not yet rotated. */
  async invitationPending(userId: string): Promise<boolean> {
    const [row] = await this.dataSource.query<{ pending: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM api_key WHERE user_id = $1 AND revoked_at IS NULL AND invitation) AS pending`,
      [userId],
    );
    return row?.pending ?? false;
  }

  /**
   * Creates a user and its first API key, returned once. A key the OPERATOR creates is an
   * invitation. Refusals: another agency's (NOT_FOUND, as an unknown agency), a role the caller may
   * not create there (FORBIDDEN), an e-mail used in the same agency (CONFLICT).
   */
  async create(ctx: RequestContext, input: CreateUserInput): Promise<{ user: UserEntity; apiKey: string }> {
    const caller = ctx.principal;
    if (!ROLES.has(input.role)) throw badInput('role is not a role');
    let agencyId = input.agencyId ?? null;
    if (agencyId === null && caller.role === Role.STEWARD && input.role !== Role.OPERATOR) {
      agencyId = caller.agencyId;
    }
    if (agencyId !== null && !isUuid(agencyId)) throw badInput('agencyId is not a valid id');
    if (input.role === Role.OPERATOR && agencyId)
      throw badInput('An OPERATOR belongs to no agency: omit agencyId');
    if (input.role !== Role.OPERATOR && !agencyId) throw badInput(`A ${input.role} needs an agencyId`);
    const email = typeof input.email === 'string' ? input.email.trim() : '';
    if (email.length > 254 || !EMAIL.test(email)) throw badInput('email is not a valid e-mail address');
    const displayName = input.displayName == null ? null : cleanText(input.displayName, 'displayName', 200);
    const invitation = caller.role === Role.OPERATOR;

    try {
      return await this.db.transaction(
        async ({ manager }) => {
          const facts = agencyId ? await this.agencyFacts(manager, agencyId, null) : null;
          if (agencyId && !facts) {
            // Unknown agency: NOT_FOUND, the same answer a steward gets for another agency's.
            throw new BrokerError(ErrorCode.NOT_FOUND, 'Agency not found', { reason: 'NOT_PARTY' });
          }
          authorize(
            caller,
            'create',
            asSubject('User', {
              agencyId,
              role: input.role,
              oversightAgency: facts?.oversight ?? false,
              agencyHasActiveSteward: facts?.activeStewards ? facts.activeStewards > 0 : false,
            }),
            'User',
            'Agency',
          );
          const user = await manager.save(
            manager.create(UserEntity, { agencyId, email, displayName, role: input.role }),
          );
          const apiKey = await this.auth.issueKey(manager, user.id, undefined, invitation);
          await this.appendVouching(manager, [user.id], {
            ...auditActor(ctx),
            action: AuditAction.USER_CREATED,
            decision: 'ALLOW',
            reason: `${input.role} ${user.id}${agencyId ? ` of agency ${agencyId}` : ''}${invitation ? ' (invitation)' : ''}`,
          });
          return { user, apiKey };
        },
        { carrier: ctx },
      );
    } catch (error) {
      // Unique within the agency only: the answer says nothing about other agencies.
      if (isUniqueViolation(error)) throw conflict('A user with this e-mail exists in this agency');
      throw error;
    }
  }

  /**
   * Deactivates a user: its keys stop on the next request, on every instance. A STEWARD
   * deactivates its agency's users but never its last active STEWARD; an AUDITOR any STEWARD (the
   * recovery of a locked-out agency); an OPERATOR OPERATORs (never the last) and AUDITORs.
   */
  async deactivate(ctx: RequestContext, id: string): Promise<UserEntity> {
    if (!isUuid(id)) throw badInput('id is not a valid id');
    return this.db.transaction(
      async ({ manager }) => {
        // Stewards of one agency are locked in a fixed order, so two deactivations cannot both see
        // "another active steward" and leave none.
        const [target] = await manager.query<
          { id: string; agency_id: string | null; role: Role; deactivated_at: Date | null }[]
        >(`SELECT id, agency_id, role, deactivated_at FROM app_user WHERE id = $1`, [id]);
        if (!target) throw new BrokerError(ErrorCode.NOT_FOUND, 'User not found', { reason: 'NOT_PARTY' });
        // Visibility first: a user the caller may not read is not found, whatever else holds (an
        // operator's id too, which answered FORBIDDEN where any other id answered NOT_FOUND).
        try {
          authorize(
            ctx.principal,
            'read',
            asSubject('User', { agencyId: target.agency_id, role: target.role }),
            'User',
          );
        } catch (error) {
          if (!(error instanceof BrokerError)) throw error;
          throw new BrokerError(ErrorCode.NOT_FOUND, 'User not found', { reason: 'NOT_PARTY' });
        }
        const facts = target.agency_id ? await this.agencyFacts(manager, target.agency_id, target.id) : null;
        const [operators] = await manager.query<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM (SELECT id FROM app_user
          WHERE role = 'OPERATOR' AND deactivated_at IS NULL AND id <> $1 ORDER BY id FOR NO KEY UPDATE) o`,
          [target.id],
        );
        authorize(
          ctx.principal,
          'deactivate',
          asSubject('User', {
            agencyId: target.agency_id,
            role: target.role,
            oversightAgency: facts?.oversight ?? false,
            agencyHasActiveSteward: (facts?.activeStewards ?? 0) > 0,
            otherActiveOperator: operators.n > 0,
          }),
          'User',
        );
        if (target.deactivated_at) throw conflict('The user is deactivated already');
        await manager.query(`UPDATE app_user SET deactivated_at = now(), deactivated_by = $2 WHERE id = $1`, [
          target.id,
          ctx.principal.userId,
        ]);
        await this.auth.revokeKeys(manager, target.id);
        await this.appendVouching(manager, [target.id], {
          ...auditActor(ctx),
          action: AuditAction.USER_DEACTIVATED,
          decision: 'ALLOW',
          reason: `${target.role} ${target.id}${target.agency_id ? ` of agency ${target.agency_id}` : ''}`,
        });
        const user = await manager.findOneBy(UserEntity, { id: target.id });
        return user!;
      },
      { carrier: ctx },
    );
  }

  /** Replaces the caller's keys with a new one (an invitation becomes the owner's own key). */
  async rotateKey(ctx: RequestContext): Promise<{ user: UserEntity; apiKey: string }> {
    const { principal } = ctx;
    return this.db.transaction(
      async ({ manager }) => {
        const [locked] = await manager.query<{ id: string }[]>(
          `SELECT id FROM app_user WHERE id = $1 AND deactivated_at IS NULL FOR NO KEY UPDATE`,
          [principal.userId],
        );
        if (!locked) throw new BrokerError(ErrorCode.UNAUTHENTICATED, 'The API key is not valid');
        await this.auth.revokeKeys(manager, principal.userId);
        const apiKey = await this.auth.issueKey(manager, principal.userId);
        await this.appendVouching(manager, [principal.userId], {
          ...auditActor(ctx),
          action: AuditAction.API_KEY_ROTATED,
          decision: 'ALLOW',
          reason: principal.invitation ? 'invitation accepted' : 'rotated',
        });
        const user = await manager.findOneBy(UserEntity, { id: principal.userId });
        return { user: user!, apiKey };
      },
      { carrier: ctx },
    );
  }

  /**
   * Creates the operator of `BROKER_BOOTSTRAP_TOKEN` when no operator exists yet (see
   * AuthService.ensureBootstrapOperator), audited as a `USER_CREATED` of no actor that vouches for
   * its account.
   */
  ensureBootstrapOperator(token: string | undefined): Promise<boolean> {
    return this.auth.ensureBootstrapOperator(token, (manager, userId) =>
      this.appendVouching(manager, [userId], {
        action: AuditAction.USER_CREATED,
        decision: 'ALLOW',
        reason: `${Role.OPERATOR} ${userId} (bootstrap, from BROKER_BOOTSTRAP_TOKEN)`,
      }),
    );
  }

  /**
   * Vouches in the chain, once, for the accounts that existed before it vouched for any: those the
   * accounts-vouched migration listed in `account_found`, as this start finds them, in
   * `ACCOUNTS_VOUCHED` events of at most {@link FOUND_PER_EVENT} accounts each; then empties the
   * list. Once the chain vouches for an account, the list is never read here again (verification
   * reports what it still names). Safe beside other instances starting; returns how many it vouched.
   */
  async vouchFound(): Promise<number> {
    const [pending] = await this.dataSource.query<{ any: boolean }[]>(
      `SELECT EXISTS (SELECT 1 FROM account_found) AS any`,
    );
    if (!pending.any) return 0;
    return this.db.transaction(async ({ manager }) => {
      const [vouching] = await manager.query<{ any: boolean }[]>(
        `SELECT EXISTS (SELECT 1 FROM audit_event WHERE action IN ${sqlNames(ACCOUNT_ACTIONS)}
                          AND details ? 'accounts') AS any`,
      );
      if (vouching.any) return 0;
      // Another instance that got here first took them: its DELETE waited for, this one finds none.
      const found = await manager.query<{ user_id: string }[]>(
        `WITH taken AS (DELETE FROM account_found RETURNING user_id)
         SELECT t.user_id::text AS user_id FROM taken t JOIN app_user u ON u.id = t.user_id`,
      );
      const ids = found.map((r) => r.user_id).sort();
      for (let i = 0; i < ids.length; i += FOUND_PER_EVENT) {
        const chunk = ids.slice(i, i + FOUND_PER_EVENT);
        await this.appendVouching(manager, chunk, {
          action: AuditAction.ACCOUNTS_VOUCHED,
          decision: 'ALLOW',
          reason: 'vouched as found: accounts that existed before the audit chain vouched for accounts',
          rowCount: chunk.length,
        });
      }
      return ids.length;
    });
  }

  /**
   * Appends, last in the transaction that changed them, the event of a change to accounts (users and
   * their keys), sealing each account's digest as this transaction stores it
   * (`details.accounts`: user id → accountDigestSql), which verification checks the tables against.
   */
  private async appendVouching(
    manager: EntityManager,
    userIds: string[],
    event: AuditEventInput,
  ): Promise<unknown> {
    const rows = await manager.query<{ id: string; digest: string }[]>(
      `SELECT u.id::text AS id, ${accountDigestSql('u')} AS digest
         FROM app_user u WHERE u.id = ANY($1::uuid[]) ORDER BY u.id`,
      [userIds],
    );
    if (rows.length !== new Set(userIds).size) throw new Error('an account to vouch for is missing');
    const accounts = Object.fromEntries(rows.map((r) => [r.id, r.digest]));
    return this.audit.append({ ...event, details: { ...event.details, accounts } }, manager);
  }

  /**
   * What the user rules need to know of an agency, its active stewards locked for the change:
   * whether it is an oversight agency and how many active STEWARDs it has (other than `except`).
   *
   * Its rows (and every user row this service locks) are locked `FOR NO KEY UPDATE`, which orders
   * the changes of users of one agency as `FOR UPDATE` would, but leaves alone the key checks of the
   * rows that name them (an agreement revoked by, or approved by, that steward, of that agency). With
   * `FOR UPDATE`, a revocation that had checked its `revoked_by` (the steward's row) and waited on
   * its `revoked_by_agency_id` (the agency's row, locked here) deadlocked with a deactivation in that
   * agency waiting on the steward's row. No key of theirs ever changes.
   */
  private async agencyFacts(
    manager: EntityManager,
    agencyId: string,
    except: string | null,
  ): Promise<{ oversight: boolean; activeStewards: number } | null> {
    const [agency] = await manager.query<{ kind: string | null }[]>(
      `SELECT kind FROM agency WHERE id = $1 FOR NO KEY UPDATE`,
      [agencyId],
    );
    if (!agency) return null;
    const stewards = await manager.query<{ id: string }[]>(
      `SELECT id FROM app_user WHERE agency_id = $1 AND role = 'STEWARD' AND deactivated_at IS NULL
        ORDER BY id FOR NO KEY UPDATE`,
      [agencyId],
    );
    return {
      oversight: agency.kind?.toLowerCase() === OVERSIGHT_KIND,
      activeStewards: stewards.filter((s) => s.id !== except).length,
    };
  }
}
