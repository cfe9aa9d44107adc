import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditAction, AuditService, IN_FORCE_REASON, contentDigestSql } from '@broker/audit';
import {
  type ControlAction,
  type RequestContext,
  Role,
  asSubject,
  authorize,
  canOnAll,
  controlAbility,
} from '@broker/auth';
import { badInput, BrokerError, conflict, Database, ErrorCode, policyStampSql } from '@broker/core';
import {
  type AgreementContent,
  type DatasetShape,
  PolicyError,
  approvalsComplete,
  contentHash,
  oversightRequired,
  populationPredicate,
  populationPredicates,
  rowFilterFields,
  validateAgreementContent,
} from '@broker/policy';
import {
  DatasetService,
  type IndexCounts,
  type IndexDemand,
  OVERSIGHT_KIND,
  PurposeService,
  cleanText,
  isUuid,
  agreementInForceSql,
} from '@broker/registry';
import { AgreementStatus, statusOf } from './agreement-status';
import type { AgreementInput } from './agreement.model';

interface AgreementRow {
  id: string;
  provider_agency_id: string;
  recipient_agency_id: string;
  current_version: number;
  in_force_version: number | null;
  revoked_at: Date | null;
  revoke_reason: string | null;
}

interface VersionRow {
  agreement_id: string;
  version: number;
  content: AgreementContent;
  hash: string;
  valid_from: Date;
  valid_until: Date;
  created_at: Date;
}

interface DeclineRow {
  agreement_id: string;
  version: number;
  agency_id: string;
  user_id: string;
  reason: string;
  at: Date;
}

interface ApprovalRow {
  agreement_id: string;
  version: number;
  agency_id: string;
  user_id: string;
  at: Date;
}

/** An agreement with its history, as the API shows it. */
export interface AgreementView {
  id: string;
  title: string;
  status: AgreementStatus;
  providerAgencyId: string;
  recipientAgencyId: string;
  currentVersion: number;
  inForceVersion: number | null;
  purposes: string[];
  validFrom: Date;
  validUntil: Date;
  revokedAt: Date | null;
  revokeReason: string | null;
  /** Of the current version: it needs an AUDITOR's approval besides both parties'. */
  oversightRequired: boolean;
  /** The version in force, or the last one that was. */
  inForce: AgreementVersionView | null;
  destructionAttestedThrough: Date | null;
  versions: AgreementVersionView[];
}

/** One version of an agreement with its approvals and, if an AUDITOR declined it, the decline. */
export interface AgreementVersionView {
  version: number;
  hash: string;
  content: Record<string, unknown>;
  createdAt: Date;
  oversightRequired: boolean;
  approvals: { agencyId: string; userId: string; at: Date }[];
  decline: { agencyId: string; userId: string; reason: string; at: Date } | null;
}

/** A version in force, as the data plane compiles it: its content and the agreement's HMAC key. */
export interface InForceAgreement {
  id: string;
  version: number;
  providerAgencyId: string;
  recipientAgencyId: string;
  content: AgreementContent;
  validFrom: Date;
  validUntil: Date;
  hmacKey: Buffer;
}

/**
 * Both parties exist (an unknown id is NOT_FOUND, a malformed one BAD_USER_INPUT, never a database
 * error) and neither is an oversight agency, which is party to no agreement. Proposals, amendments
 * and previews check alike.
 */
export async function checkParties(
  dataSource: DataSource,
  content: Pick<AgreementContent, 'providerAgencyId' | 'recipientAgencyId'>,
): Promise<void> {
  const ids = [content.providerAgencyId, content.recipientAgencyId];
  for (const [name, id] of [
    ['providerAgencyId', ids[0]],
    ['recipientAgencyId', ids[1]],
  ] as const) {
    if (!isUuid(id)) throw badInput(`${name} is not a valid id`);
  }
  const rows = await dataSource.query<{ id: string; kind: string | null }[]>(
    `SELECT id, kind FROM agency WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  if (rows.length < 2) {
    throw new BrokerError(ErrorCode.NOT_FOUND, 'Agency not found', { reason: 'NOT_PARTY' });
  }
  if (rows.some((r) => r.kind?.toLowerCase() === OVERSIGHT_KIND)) {
    throw new BrokerError(ErrorCode.BAD_USER_INPUT, 'An oversight agency is party to no agreement', {
      reason: 'INVALID',
    });
  }
}

/**
 * The agreement lifecycle: propose, amend, approve, revoke. Every change of what is in force moves
 * its recipient's policy stamp in the same transaction (the database does, with the change: see
 * MOVE_POLICY_STAMP_SQL), so every broker instance sees it on its next request, and appends its
 * audit event last, right before the commit.
 */
@Injectable()
export class AgreementService {
  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    private readonly datasets: DatasetService,
    private readonly purposes: PurposeService,
    private readonly audit: AuditService,
  ) {}

  /** The agreements the caller may see: all for OPERATOR and AUDITOR, its agency's otherwise. */
  async list(ctx: RequestContext, status?: AgreementStatus | null): Promise<AgreementView[]> {
    const { principal } = ctx;
    const rows: AgreementRow[] = canOnAll(principal, 'read', 'Agreement')
      ? await this.dataSource.query(`SELECT * FROM agreement ORDER BY created_at, id`)
      : await this.dataSource.query(
          `SELECT * FROM agreement WHERE $1::uuid IN (provider_agency_id, recipient_agency_id) ORDER BY created_at, id`,
          [principal.agencyId],
        );
    const views = await this.views(this.dataSource.manager, rows);
    return status ? views.filter((v) => v.status === status) : views;
  }

  /** One agreement; NOT_FOUND when it is missing or the caller may not read it (the same answer). */
  async get(ctx: RequestContext, id: string): Promise<AgreementView> {
    const row = await this.rowFor(this.dataSource.manager, ctx, id, 'read');
    return (await this.views(this.dataSource.manager, [row]))[0];
  }

  /** Proposes an agreement: version 1, approved by the proposer's side. */
  async propose(ctx: RequestContext, input: AgreementInput): Promise<AgreementView> {
    const steward = ctx.principal;
    const content = await this.validate(input, (valid) => authorizeParty(steward, 'propose', valid));
    const id = await this.db.transaction(
      async ({ manager }) => {
        const [row] = await manager.query<{ id: string }[]>(
          `INSERT INTO agreement (provider_agency_id, recipient_agency_id, current_version, created_by)
         VALUES ($1, $2, 1, $3) RETURNING id`,
          [content.providerAgencyId, content.recipientAgencyId, steward.userId],
        );
        await manager.query(`INSERT INTO agreement_secret (agreement_id, hmac_key) VALUES ($1, $2)`, [
          row.id,
          randomBytes(32),
        ]);
        const digest = await this.insertVersion(manager, row.id, 1, content, ctx);
        await this.appendEvent(manager, ctx, AuditAction.AGREEMENT_PROPOSED, row.id, 1, content, digest);
        return row.id;
      },
      { carrier: ctx },
    );
    return this.get(ctx, id);
  }

  /** Amends an agreement: the next version, approved by the amender's side only. */
  async amend(ctx: RequestContext, id: string, input: AgreementInput): Promise<AgreementView> {
    // Who may amend is checked again, under the lock, below.
    const content = await this.validate(input, () => this.rowFor(this.dataSource.manager, ctx, id, 'amend'));
    await this.db.transaction(
      async ({ manager }) => {
        const row = await this.lockForChange(manager, ctx, id, 'amend');
        if (
          content.providerAgencyId !== row.provider_agency_id ||
          content.recipientAgencyId !== row.recipient_agency_id
        ) {
          throw badInput(
            'An amendment keeps the provider and the recipient; propose a new agreement instead',
          );
        }
        const version = row.current_version + 1;
        await manager.query(`UPDATE agreement SET current_version = $2 WHERE id = $1`, [id, version]);
        const digest = await this.insertVersion(manager, id, version, content, ctx);
        await this.appendEvent(manager, ctx, AuditAction.AGREEMENT_AMENDED, id, version, content, digest);
      },
      { carrier: ctx },
    );
    return this.get(ctx, id);
  }

  /**
   * Approves the current version: a party's steward for its side, or an AUDITOR for oversight where
   * the version needs it. The version comes into force once every required approval exists.
   */
  async approve(ctx: RequestContext, id: string, version: number): Promise<AgreementView> {
    const approver = ctx.principal;
    let cameIntoForce = false;
    await this.db.transaction(
      async ({ manager }) => {
        const row =
          ctx.principal.role === Role.AUDITOR
            ? await this.lockForOversight(manager, ctx, id, version, 'approve')
            : await this.lockForChange(manager, ctx, id, 'approve');
        if (version !== row.current_version) {
          throw conflict(
            `Version ${version} is not the current version (${row.current_version}); approve that one`,
          );
        }
        const [declined] = await manager.query<unknown[]>(
          `SELECT 1 FROM agreement_decline WHERE agreement_id = $1 AND version = $2`,
          [id, version],
        );
        if (declined)
          throw conflict(`Version ${version} was declined by oversight; amend the agreement instead`);
        const inserted = await manager.query<unknown[]>(
          `INSERT INTO agreement_approval (agreement_id, version, agency_id, user_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING RETURNING 1`,
          [id, version, approver.agencyId, approver.userId],
        );
        if (!inserted.length) return; // this side approved already: nothing changes
        const inForce = await this.settle(manager, row, version);
        cameIntoForce = inForce;
        // Only a version coming into force changes what anyone may read: its `in_force_version`,
        // written by settle, moved the recipient's policy stamp (see MOVE_POLICY_STAMP_SQL).
        await this.audit.append(
          {
            actorUserId: approver.userId,
            actorAgencyId: approver.agencyId,
            action: AuditAction.AGREEMENT_APPROVED,
            decision: 'ALLOW',
            reason: inForce
              ? IN_FORCE_REASON
              : ctx.principal.role === Role.AUDITOR
                ? 'oversight approved: awaiting a party'
                : 'awaiting another approval',
            agreementId: id,
            agreementVersion: version,
          },
          manager,
        );
      },
      { carrier: ctx },
    );
    if (cameIntoForce) await this.buildIndexes(id, version);
    return this.get(ctx, id);
  }

  /**
   * An AUDITOR declines a version that needs oversight, with a reason: that version never comes into
   * force; the version in force, if any, keeps governing, and the parties may amend.
   */
  async decline(ctx: RequestContext, id: string, version: number, reason: string): Promise<AgreementView> {
    const auditor = ctx.principal;
    const why = cleanText(reason, 'reason', 2000);
    if (!why) throw badInput('reason is required: say why the version is declined');
    await this.db.transaction(
      async ({ manager }) => {
        const row = await this.lockForOversight(manager, ctx, id, version, 'decline');
        if (version !== row.current_version) {
          throw conflict(
            `Version ${version} is not the current version (${row.current_version}); decline that one`,
          );
        }
        const approvals = await manager.query<{ agency_id: string }[]>(
          `SELECT agency_id FROM agreement_approval WHERE agreement_id = $1 AND version = $2`,
          [id, version],
        );
        if (
          approvals.some(
            (a) => a.agency_id !== row.provider_agency_id && a.agency_id !== row.recipient_agency_id,
          )
        ) {
          throw conflict(`Version ${version} was approved by oversight already`);
        }
        const inserted = await manager.query<unknown[]>(
          `INSERT INTO agreement_decline (agreement_id, version, agency_id, user_id, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING 1`,
          [id, version, auditor.agencyId, auditor.userId, why],
        );
        if (!inserted.length) {
          // Declined already: the same decline again (a retry) changes nothing; another reason would
          // be lost if it were acknowledged, so it is refused.
          const [first] = await manager.query<{ reason: string }[]>(
            `SELECT reason FROM agreement_decline WHERE agreement_id = $1 AND version = $2`,
            [id, version],
          );
          if (first?.reason === why) return;
          throw conflict(
            `Version ${version} was declined already, for another reason; amend the agreement instead`,
          );
        }
        // The version in force, if any, keeps governing: nobody's access changes, the stamp stays.
        await this.audit.append(
          {
            actorUserId: auditor.userId,
            actorAgencyId: auditor.agencyId,
            action: AuditAction.AGREEMENT_DECLINED,
            decision: 'ALLOW',
            reason: why,
            agreementId: id,
            agreementVersion: version,
          },
          manager,
        );
      },
      { carrier: ctx },
    );
    return this.get(ctx, id);
  }

  /**
   * A recipient steward attests that every row released under the agreement up to `through` has
   * been destroyed (DESIGN §4.4): never in the future, never earlier than the last attestation;
   * allowed after revocation or expiry. Refused (CONFLICT) for an agreement that was never in force
   * (only proposed, declined, or revoked before it came into force): nothing was released under it,
   * and the register lists no such agreement.
   */
  async attestDestruction(ctx: RequestContext, id: string, through: Date): Promise<AgreementView> {
    const steward = ctx.principal;
    if (!(through instanceof Date) || Number.isNaN(through.getTime()))
      throw badInput('through is not a date-time');
    await this.db.transaction(
      async ({ manager }) => {
        // Allowed after revocation or expiry: the row is not locked for a change.
        const row = await this.rowFor(manager, ctx, id, 'attest', true);
        if (row.in_force_version === null) {
          throw conflict('The agreement was never in force: nothing was released under it to destroy');
        }
        const [{ now, last }] = await manager.query<{ now: Date; last: Date | null }[]>(
          `SELECT clock_timestamp() AS now, max(through) AS last FROM destruction_attestation WHERE agreement_id = $1`,
          [id],
        );
        if (through > now) throw badInput('through must not be in the future');
        if (last && through < last) {
          throw badInput(`through must not be earlier than the last attestation (${last.toISOString()})`);
        }
        await manager.query(
          `INSERT INTO destruction_attestation (agreement_id, through, agency_id, user_id)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
          [id, through, steward.agencyId, steward.userId],
        );
        await this.audit.append(
          {
            actorUserId: steward.userId,
            actorAgencyId: steward.agencyId,
            action: AuditAction.DESTRUCTION_ATTESTED,
            decision: 'ALLOW',
            reason: `released rows destroyed through ${through.toISOString()}`,
            agreementId: id,
            agreementVersion: row.in_force_version,
          },
          manager,
        );
      },
      { carrier: ctx },
    );
    return this.get(ctx, id);
  }

  /** Puts `version` in force if every approval it needs exists; whether it did. */
  private async settle(manager: EntityManager, row: AgreementRow, version: number): Promise<boolean> {
    const approvals = await manager.query<{ agency_id: string }[]>(
      `SELECT agency_id FROM agreement_approval WHERE agreement_id = $1 AND version = $2`,
      [row.id, version],
    );
    const complete = approvalsComplete(
      { providerAgencyId: row.provider_agency_id, recipientAgencyId: row.recipient_agency_id },
      {
        oversightRequired: await this.versionNeedsOversight(manager, row.id, version),
        declined: false,
        approvalAgencyIds: approvals.map((a) => a.agency_id),
      },
    );
    if (complete) {
      await manager.query(`UPDATE agreement SET in_force_version = $2 WHERE id = $1`, [row.id, version]);
    }
    return complete;
  }

  private async versionNeedsOversight(manager: EntityManager, id: string, version: number): Promise<boolean> {
    const [v] = await manager.query<{ content: AgreementContent }[]>(
      `SELECT content FROM agreement_version WHERE agreement_id = $1 AND version = $2`,
      [id, version],
    );
    if (!v) return false;
    const shapes = await this.datasets.shapes(v.content.grants.map((g) => g.datasetId));
    return oversightRequired(v.content, shapes);
  }

  /**
   * Locks an agreement for an AUDITOR's oversight decision on `version`: NOT_FOUND when missing,
   * CONFLICT when revoked, FORBIDDEN when the version needs no oversight (an AUDITOR is not a party).
   */
  /**
   * Locks an agreement for an AUDITOR's decision on oversight: the ability allows it only on a
   * version that needs oversight. One that needs none is refused as such: an AUDITOR, who reads every
   * agreement, is not a party.
   */
  private async lockForOversight(
    manager: EntityManager,
    ctx: RequestContext,
    id: string,
    version: number,
    action: 'approve' | 'decline',
  ): Promise<AgreementRow> {
    const row = await this.rowFor(manager, ctx, id, 'read', true);
    if (row.revoked_at) throw conflict('The agreement is revoked; revocation is final');
    const needed =
      version !== row.current_version || (await this.versionNeedsOversight(manager, id, version));
    const subject = asSubject('Agreement', { ...partiesOfRow(row), oversightRequired: needed });
    if (!controlAbility(ctx.principal).can(action, subject)) {
      throw new BrokerError(
        ErrorCode.FORBIDDEN,
        needed
          ? 'Only an AUDITOR of an oversight agency decides on oversight'
          : 'This version needs no oversight: only the parties approve it, and an AUDITOR is not a party',
        { reason: 'ROLE' },
      );
    }
    return row;
  }

  /**
   * The record indexes a version in force needs: one per field its row filters read, built after
   * the approval commits (concurrently: ingestion and queries go on), waited for a few seconds at
   * most (DatasetService.ensureIndexesSoon). An index that cannot be built only makes queries
   * slower: it never refuses an approval that has committed, and the next
   * {@link ensureIndexesInForce} builds it.
   */
  private async buildIndexes(id: string, version: number): Promise<void> {
    const [row] = await this.dataSource.query<{ content: AgreementContent }[]>(
      `SELECT content FROM agreement_version WHERE agreement_id = $1 AND version = $2`,
      [id, version],
    );
    await this.datasets.ensureIndexesSoon(
      await this.indexDemands(row ? [row.content] : []),
      `agreement ${id} v${version}`,
    );
  }

  /**
   * Brings the record indexes of every version in force up to date: each broker does so when it
   * starts, so that a version that came into force before the broker built them, or whose build
   * failed (a cancelled concurrent build leaves an invalid index behind), gets them. Concurrently,
   * one index at a time, safe beside other instances doing the same (see DatasetService.ensureIndexes).
   * Resolves to how many indexes were already there, built, rebuilt, or could not be built.
   */
  async ensureIndexesInForce(): Promise<IndexCounts> {
    return this.datasets.ensureIndexesOf(await this.indexesInForce());
  }

  /** The record indexes the versions in force need (see {@link rowFilterIndexes}), by dataset. */
  async indexesInForce(): Promise<Map<string, IndexDemand[]>> {
    const rows = await this.dataSource.query<{ content: AgreementContent }[]>(
      `SELECT v.content FROM agreement a
         JOIN agreement_version v ON v.agreement_id = a.id AND v.version = a.in_force_version
        WHERE ${agreementInForceSql('a')}`,
    );
    return this.indexDemands(rows.map((r) => r.content));
  }

  /** {@link rowFilterIndexes} of versions, with their datasets' shapes read. */
  private async indexDemands(contents: readonly AgreementContent[]): Promise<Map<string, IndexDemand[]>> {
    const ids = contents.flatMap((c) => (c.grants ?? []).filter((g) => g.rowFilter).map((g) => g.datasetId));
    const shapes = ids.length ? await this.datasets.shapes(ids) : new Map<string, never>();
    return rowFilterIndexes(contents, shapes);
  }

  /** Revokes an agreement: final, and access stops at once on every broker. */
  async revoke(ctx: RequestContext, id: string, reason: string): Promise<AgreementView> {
    const steward = ctx.principal;
    const why = cleanText(reason, 'reason', 2000);
    await this.db.transaction(
      async ({ manager }) => {
        await this.lockForChange(manager, ctx, id, 'revoke');
        await manager.query(
          `UPDATE agreement SET revoked_at = clock_timestamp(), revoked_by = $2, revoked_by_agency_id = $3, revoke_reason = $4
          WHERE id = $1`,
          [id, steward.userId, steward.agencyId, why],
        );
        // That moved the recipient's policy stamp, in the database (see MOVE_POLICY_STAMP_SQL).
        await this.audit.append(
          {
            actorUserId: steward.userId,
            actorAgencyId: steward.agencyId,
            action: AuditAction.AGREEMENT_REVOKED,
            decision: 'ALLOW',
            reason: why,
            agreementId: id,
          },
          manager,
        );
      },
      { carrier: ctx },
    );
    return this.get(ctx, id);
  }

  /**
   * The policy stamp of recipient `agencyId`: changes whenever what is in force for it does (see
   * MOVE_POLICY_STAMP_SQL).
   */
  async stamp(agencyId: string): Promise<number> {
    const [row] = await this.dataSource.query<{ stamp: string }[]>(
      `SELECT ${policyStampSql('$1')} AS stamp`,
      [agencyId],
    );
    return Number(row.stamp);
  }

  /**
   * Every unrevoked agreement of which `agencyId` is the recipient and that has a version in force,
   * whatever its window (the caller checks the window against its own clock at each request).
   */
  async inForceForRecipient(agencyId: string): Promise<{ stamp: number; agreements: InForceAgreement[] }> {
    return this.db.transaction(
      async ({ manager }) => {
        const [{ stamp }] = await manager.query<{ stamp: string }[]>(
          `SELECT ${policyStampSql('$1')} AS stamp`,
          [agencyId],
        );
        const rows = await manager.query<
          (VersionRow & { provider_agency_id: string; recipient_agency_id: string; hmac_key: Buffer })[]
        >(
          `SELECT v.*, a.provider_agency_id, a.recipient_agency_id, s.hmac_key
           FROM agreement a
           JOIN agreement_version v ON v.agreement_id = a.id AND v.version = a.in_force_version
           JOIN agreement_secret s ON s.agreement_id = a.id
          WHERE a.recipient_agency_id = $1 AND a.revoked_at IS NULL
          ORDER BY a.created_at, a.id`,
          [agencyId],
        );
        return {
          stamp: Number(stamp),
          agreements: rows.map((r) => ({
            id: r.agreement_id,
            version: r.version,
            providerAgencyId: r.provider_agency_id,
            recipientAgencyId: r.recipient_agency_id,
            content: r.content,
            validFrom: r.valid_from,
            validUntil: r.valid_until,
            hmacKey: r.hmac_key,
          })),
        };
      },
      { isolation: 'REPEATABLE READ' },
    );
  }

  /**
   * The content of `input`, validated; `authorized` refuses a caller who may not make the change
   * (it throws), once the content is known to be well formed and before any row filter is tried on a
   * record table (see {@link unindexableRowFilters}): only a party's steward has PostgreSQL run DDL.
   */
  private async validate(
    input: AgreementInput,
    authorized: (content: AgreementContent) => unknown,
  ): Promise<AgreementContent> {
    const ids = Array.isArray(input.grants) ? input.grants.map((g) => g?.datasetId).filter(Boolean) : [];
    const [shapes, purposes] = await Promise.all([this.datasets.shapes(ids), this.purposes.codes()]);
    const result = validateAgreementContent(input, { datasets: shapes, purposes });
    if (result.ok) await authorized(result.content);
    const problems = result.ok
      ? await unindexableRowFilters(this.datasets, input, result.content, shapes)
      : result.problems;
    if (!result.ok || problems.length) {
      throw new BrokerError(
        ErrorCode.BAD_USER_INPUT,
        `The agreement is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
        { reason: 'INVALID', details: problems },
      );
    }
    await checkParties(this.dataSource, result.content);
    return result.content;
  }

  /**
   * The agreement row, when the caller's ability allows `action` on it (see `authorize`: another
   * agency's agreement is NOT_FOUND, exactly as a missing one); locked for a change when `lock`.
   */
  private async rowFor(
    manager: EntityManager,
    ctx: RequestContext,
    id: string,
    action: Exclude<ControlAction, 'party'>,
    lock = false,
  ): Promise<AgreementRow> {
    // Malformed input is BAD_USER_INPUT (no agreement can have that id: it tells nothing).
    if (!isUuid(id)) throw badInput('id is not a valid agreement id');
    const [row] = await manager.query<AgreementRow[]>(
      `SELECT * FROM agreement WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    if (!row) throw new BrokerError(ErrorCode.NOT_FOUND, 'Agreement not found', { reason: 'NOT_PARTY' });
    authorize(ctx.principal, action, asSubject('Agreement', partiesOfRow(row)), 'Agreement');
    return row;
  }

  /** Locks an agreement for a change the caller's ability allows; a revoked one changes no more. */
  private async lockForChange(
    manager: EntityManager,
    ctx: RequestContext,
    id: string,
    action: Exclude<ControlAction, 'party'>,
  ): Promise<AgreementRow> {
    const row = await this.rowFor(manager, ctx, id, action, true);
    if (row.revoked_at) throw conflict('The agreement is revoked; revocation is final');
    return row;
  }

  private async insertVersion(
    manager: EntityManager,
    id: string,
    version: number,
    content: AgreementContent,
    ctx: RequestContext,
  ) {
    // The digest of the terms as stored, which the version's event seals (see contentDigestSql).
    const [{ digest }] = await manager.query<{ digest: string }[]>(
      `INSERT INTO agreement_version (agreement_id, version, content, hash, valid_from, valid_until, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${contentDigestSql('content')} AS digest`,
      [
        id,
        version,
        JSON.stringify(content),
        contentHash(content),
        content.validFrom,
        content.validUntil,
        ctx.principal.userId,
      ],
    );
    await manager.query(
      `INSERT INTO agreement_approval (agreement_id, version, agency_id, user_id) VALUES ($1, $2, $3, $4)`,
      [id, version, ctx.principal.agencyId, ctx.principal.userId],
    );
    // A version proposed is in force for nobody yet: the stamp stays (see MOVE_POLICY_STAMP_SQL).
    return digest;
  }

  private appendEvent(
    manager: EntityManager,
    ctx: RequestContext,
    action: AuditAction,
    agreementId: string,
    version: number,
    content: AgreementContent,
    contentDigest: string,
  ) {
    return this.audit.append(
      {
        actorUserId: ctx.principal.userId,
        actorAgencyId: ctx.principal.agencyId,
        action,
        decision: 'ALLOW',
        agreementId,
        agreementVersion: version,
        purpose: content.purposes.join(','),
        fields: content.grants.flatMap((g) => g.fields.map((f) => `${g.datasetId}:${f.name}:${f.transform}`)),
        // The whole of the terms (row filters, validity, access, consent, cells, linkage), sealed.
        details: { contentDigest },
      },
      manager,
    );
  }

  private async views(manager: EntityManager, rows: AgreementRow[]): Promise<AgreementView[]> {
    if (!rows.length) return [];
    const ids = rows.map((r) => r.id);
    const [versions, approvals, declines, attested] = await Promise.all([
      manager.query<VersionRow[]>(
        `SELECT agreement_id, version, content, hash, valid_from, valid_until, created_at
           FROM agreement_version WHERE agreement_id = ANY($1::uuid[]) ORDER BY agreement_id, version`,
        [ids],
      ),
      manager.query<ApprovalRow[]>(
        `SELECT agreement_id, version, agency_id, user_id, at
           FROM agreement_approval WHERE agreement_id = ANY($1::uuid[]) ORDER BY at`,
        [ids],
      ),
      manager.query<DeclineRow[]>(
        `SELECT agreement_id, version, agency_id, user_id, reason, at
           FROM agreement_decline WHERE agreement_id = ANY($1::uuid[])`,
        [ids],
      ),
      manager.query<{ agreement_id: string; through: Date }[]>(
        `SELECT agreement_id, max(through) AS through
           FROM destruction_attestation WHERE agreement_id = ANY($1::uuid[]) GROUP BY agreement_id`,
        [ids],
      ),
    ]);
    const shapes = await this.datasets.shapes(
      versions.flatMap((v) => v.content.grants.map((g) => g.datasetId)),
    );
    const now = new Date();
    return rows.map((row) => {
      const own: (VersionRow & { view: AgreementVersionView })[] = versions
        .filter((v) => v.agreement_id === row.id)
        .map((v) => {
          const decline = declines.find((d) => d.agreement_id === row.id && d.version === v.version);
          return {
            ...v,
            view: {
              version: v.version,
              hash: v.hash,
              content: v.content as unknown as Record<string, unknown>,
              createdAt: v.created_at,
              oversightRequired: oversightRequired(v.content, shapes),
              approvals: approvals
                .filter((a) => a.agreement_id === row.id && a.version === v.version)
                .map((a) => ({ agencyId: a.agency_id, userId: a.user_id, at: a.at })),
              decline: decline
                ? {
                    agencyId: decline.agency_id,
                    userId: decline.user_id,
                    reason: decline.reason,
                    at: decline.at,
                  }
                : null,
            },
          };
        });
      const current = own.find((v) => v.version === row.current_version)!;
      const inForce = own.find((v) => v.version === row.in_force_version) ?? null;
      return {
        id: row.id,
        title: current.content.title,
        status: statusOf(
          {
            revokedAt: row.revoked_at,
            inForce: inForce && { validFrom: inForce.valid_from, validUntil: inForce.valid_until },
          },
          now,
        ),
        providerAgencyId: row.provider_agency_id,
        recipientAgencyId: row.recipient_agency_id,
        currentVersion: row.current_version,
        inForceVersion: row.in_force_version,
        purposes: current.content.purposes,
        validFrom: current.valid_from,
        validUntil: current.valid_until,
        revokedAt: row.revoked_at,
        revokeReason: row.revoke_reason,
        oversightRequired: current.view.oversightRequired,
        inForce: inForce?.view ?? null,
        destructionAttestedThrough: attested.find((a) => a.agreement_id === row.id)?.through ?? null,
        versions: own.map((v) => v.view),
      };
    });
  }
}

/** An agreement's two parties, as the ability sees them. */
export function partiesOf(content: Pick<AgreementContent, 'providerAgencyId' | 'recipientAgencyId'>) {
  return { providerAgencyId: content.providerAgencyId, recipientAgencyId: content.recipientAgencyId };
}

function partiesOfRow(row: Pick<AgreementRow, 'provider_agency_id' | 'recipient_agency_id'>) {
  return { providerAgencyId: row.provider_agency_id, recipientAgencyId: row.recipient_agency_id };
}

/** Refuses (FORBIDDEN) unless the caller's ability allows `action` on new content between these parties. */
export function authorizeParty(
  principal: RequestContext['principal'],
  action: 'propose' | 'preview',
  content: Pick<AgreementContent, 'providerAgencyId' | 'recipientAgencyId'>,
): void {
  if (!controlAbility(principal).can(action, asSubject('Agreement', partiesOf(content)))) {
    throw new BrokerError(
      ErrorCode.FORBIDDEN,
      `A steward may ${action} agreements to which its agency is a party`,
      {
        reason: 'ROLE',
      },
    );
  }
}

/**
 * The record indexes versions need, by dataset: one single-field index per field a grant's row
 * filter reads, and the indexes of each row filter's population, partial on it, and, for a grant
 * that requires consent, of each purpose's consenting population (see populationPredicates; DatasetService
 * expands a predicate into them: see `populationIndexes`). `shapes` are the datasets' (a grant of a
 * dataset not among them, or whose filter does not fit it, asks for its fields' indexes only). The one
 * home of that rule, for approvals and for {@link AgreementService.ensureIndexesInForce}.
 */
export function rowFilterIndexes(
  contents: readonly AgreementContent[],
  shapes: ReadonlyMap<string, DatasetShape>,
): Map<string, IndexDemand[]> {
  const byDataset = new Map<string, { fields: Set<string>; predicates: Set<string> }>();
  for (const content of contents) {
    for (const grant of content.grants ?? []) {
      const demand = byDataset.get(grant.datasetId) ?? {
        fields: new Set<string>(),
        predicates: new Set<string>(),
      };
      byDataset.set(grant.datasetId, demand);
      const shape = shapes.get(grant.datasetId);
      if (grant.rowFilter) {
        for (const field of rowFilterFields(grant.rowFilter)) demand.fields.add(field);
      }
      const predicate = grantPredicate(grant, shape);
      // A filter that does not fit its dataset has no population to index (its pages are refused).
      if (!shape || (grant.rowFilter && predicate === null)) continue;
      for (const p of populationPredicates(predicate, grant, shape, content.purposes, shape.slug)) {
        demand.predicates.add(p);
      }
    }
  }
  return new Map(
    [...byDataset].map(([id, { fields, predicates }]) => [
      id,
      [...[...fields].sort().map((f) => [f]), ...[...predicates].sort().map((predicate) => ({ predicate }))],
    ]),
  );
}

/**
 * The predicate of the indexes of a grant's population (see `populationIndexes`): its row filter
 * written in on the dataset's record table; null without a row filter, without the dataset's
 * shape, or for a filter that does not fit it.
 */
function grantPredicate(
  grant: AgreementContent['grants'][number],
  shape: DatasetShape | undefined,
): string | null {
  if (!shape) return null;
  try {
    return populationPredicate(grant.rowFilter, shape, shape.slug);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return null;
  }
}

/**
 * The grants of valid `content` (validated from `input`) whose row filter PostgreSQL cannot index,
 * as problems of the agreement (`grants[i].rowFilter`, `i` the grant's place in `input`), in the
 * words a steward acts on. Without its population's indexes, how long a page under the filter
 * takes could tell the recipient about records the agreement leaves out
 * (docs/disclosure-control.md, "Timing"), so such a filter is refused as invalid when an agreement
 * is proposed, amended or previewed: no version brings one into force. Called only once the caller
 * is allowed the change (a party's steward): nobody else has DDL run. The rule is PostgreSQL's
 * own, tried and rolled back (DatasetService.unindexablePopulations) on the very predicates
 * {@link rowFilterIndexes} asks for.
 */
export async function unindexableRowFilters(
  datasets: DatasetService,
  input: Pick<AgreementInput, 'grants'>,
  content: AgreementContent,
  shapes: ReadonlyMap<string, DatasetShape>,
): Promise<{ path: string; message: string }[]> {
  // The content's grants are in canonical order; a problem names the grant as it was given.
  const given: unknown[] = Array.isArray(input.grants)
    ? input.grants.map((g: { datasetId?: unknown } | null) => g?.datasetId)
    : [];
  const byDataset = new Map<string, { slug: string; grants: { index: number; predicate: string }[] }>();
  for (const grant of content.grants) {
    const shape = shapes.get(grant.datasetId);
    const predicate = grantPredicate(grant, shape);
    if (!shape || predicate === null) continue;
    const entry = byDataset.get(grant.datasetId) ?? { slug: shape.slug, grants: [] };
    entry.grants.push({ index: given.indexOf(grant.datasetId), predicate });
    byDataset.set(grant.datasetId, entry);
  }
  const problems: { path: string; message: string }[] = [];
  for (const { slug, grants } of byDataset.values()) {
    const unindexable = await datasets.unindexablePopulations(
      slug,
      grants.map((g) => g.predicate),
    );
    for (const { index, predicate } of grants) {
      if (!unindexable.has(predicate)) continue;
      problems.push({
        path: `grants[${index}].rowFilter`,
        message:
          `is too large to index on dataset ${slug}: PostgreSQL keeps an index's condition in one ` +
          'catalog row of about 8 kB, and the broker indexes each row filter so that reads of records ' +
          'outside the agreement do not show in their timing; use fewer or shorter values (a range ' +
          'with $gte and $lt in place of a long $in list), or split the population across agreements',
      });
    }
  }
  return problems.sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
}
