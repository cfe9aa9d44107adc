import type { PoolClient } from 'pg';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import { type RequestContext, authorizeType } from '@broker/auth';
import { MetricsService, badInput } from '@broker/core';
import type { AuditAction, AuditDecision } from './audit-action.enum';
import {
  type AuditEventContent,
  type ChainVerification,
  type JsonValue,
  canonicalJson,
  isoFromMicros,
  sealEvent,
  storableText,
  toStorableJson,
} from './audit-chain';
import { AuditEventEntity } from './audit-event.entity';
import type { AuditEventConnectionModel, AuditEventModel } from './audit-event.model';
import type { AuditFilter } from './audit-filter.input';
import { type VisibilityTables, auditVisibility } from './audit-visibility';
import { verifyChain } from './audit-verifier';
import { refusalCount, refusalPlane } from './refusal-plane';

/**
 * What happened, for {@link AuditService.append}. Ids, names, counts and reasons only: never a
 * record value (put released record keys in `details` if needed, never what they hold).
 */
export interface AuditEventInput {
  actorUserId?: string | null;
  actorAgencyId?: string | null;
  action: AuditAction;
  decision: `${AuditDecision}`;
  reason?: string | null;
  purpose?: string | null;
  datasetId?: string | null;
  agreementId?: string | null;
  agreementVersion?: number | null;
  /** Released field names. */
  fields?: string[] | null;
  rowCount?: number | null;
  /** Stored and hashed, not shown by the control plane; JSON with no record values. */
  details?: Record<string, unknown> | null;
}

/** The actor fields of an event caused by the caller of a request. */
export function auditActor(ctx: RequestContext): Pick<AuditEventInput, 'actorUserId' | 'actorAgencyId'> {
  return { actorUserId: ctx.principal.userId, actorAgencyId: ctx.principal.agencyId };
}

/** The data requests the public register counts per agreement (DESIGN §4.4). */
const REGISTER_ACTIONS: ReadonlySet<string> = new Set(['QUERY', 'AGGREGATE', 'EXPORT']);
/** Of those, the ones that release rows. */
const ROW_ACTIONS: ReadonlySet<string> = new Set(['QUERY', 'EXPORT']);

/**
 * The register's counts, moved in the append's own statement so that they commit or roll back with
 * the event: one row per (agreement, UTC month) and, for released rows, per (agreement, UTC day).
 * Appends are already serialised by the chain head, so these rows add no wait of their own; and no
 * row is shared by every append (each agreement has its own), so nothing here becomes the one hot row
 * if the chain is ever sharded. A denial counts only when a party's user made it. An event naming an
 * agreement that does not exist counts nowhere.
 */
const REGISTER_COUNT_SQL = `,
       party AS (SELECT provider_agency_id, recipient_agency_id FROM agreement WHERE id = $10::uuid),
       monthly AS (
         INSERT INTO register_month AS m (agreement_id, month, allowed, denied, rows_released)
         SELECT $10::uuid, $17::date, $19::bigint,
                CASE WHEN $4::uuid IN (provider_agency_id, recipient_agency_id) THEN $20::bigint ELSE 0 END, $21::bigint
           FROM party
         ON CONFLICT (agreement_id, month) DO UPDATE
           SET allowed = m.allowed + EXCLUDED.allowed, denied = m.denied + EXCLUDED.denied,
               rows_released = m.rows_released + EXCLUDED.rows_released
       ),
       daily AS (
         INSERT INTO register_release_day AS d (agreement_id, day, rows_released)
         SELECT $10::uuid, $18::date, $21::bigint FROM party WHERE $21::bigint > 0
         ON CONFLICT (agreement_id, day) DO UPDATE SET rows_released = d.rows_released + EXCLUDED.rows_released
       )`;

function registerCountParams(event: {
  at: string;
  action: string;
  decision: string;
  rowCount: number | null;
}): unknown[] {
  const allowed = event.decision === 'ALLOW';
  const rows = allowed && ROW_ACTIONS.has(event.action) ? Math.max(0, event.rowCount ?? 0) : 0;
  return [`${event.at.slice(0, 7)}-01`, event.at.slice(0, 10), allowed ? 1 : 0, allowed ? 0 : 1, rows];
}

/** `auditEvents` page size bounds. */
export const AUDIT_PAGE_MAX = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INT4_MIN = -(2 ** 31);
const INT4_MAX = 2 ** 31 - 1;

/**
 * The audit log: appends events to one hash chain, lists them to those who may see them, and
 * verifies the chain. Other libraries call {@link append} for every data access, denial and
 * control-plane change.
 *
 * @example
 * await dataSource.transaction(async (manager) => {
 *   const rows = await manager.query(compiledSql, params);
 *   await audit.append({ ...auditActor(ctx), action: AuditAction.QUERY, decision: 'ALLOW', rowCount: rows.length }, manager);
 *   return rows; // returned only if the append committed with them
 * });
 */
/** What an append needs of a connection inside a transaction. */
interface Querier {
  query<T>(sql: string, params?: unknown[]): Promise<T>;
}

@Injectable()
export class AuditService {
  private agreementsTable = false;

  constructor(
    private readonly dataSource: DataSource,
    @InjectRepository(AuditEventEntity) private readonly events: Repository<AuditEventEntity>,
    private readonly metrics: MetricsService,
  ) {}

  /** Records one group commit of appends made elsewhere (the data plane's batcher), for metrics. */
  recordGroupCommit(events: number, seconds: number): void {
    this.metrics.auditGroupCommitEvents.observe(events);
    this.metrics.auditGroupCommitDuration.observe(seconds);
  }

  /**
   * Appends an event to the chain and returns its seq and hash. With `manager`, inside the caller's
   * transaction (which must be READ COMMITTED, the default): call it last, right before COMMIT,
   * because it holds the chain's lock until then; a rollback takes the event back and leaves no gap.
   * Without one, in a short transaction of its own. Invalid input throws a TypeError before any lock.
   */
  async append(event: AuditEventInput, manager?: EntityManager): Promise<{ seq: number; hash: string }> {
    const content = storableContent(event);
    const run = (m: EntityManager) => this.appendIn(m, content);
    if (!manager) return this.dataSource.transaction(run);
    // Outside a transaction, the head's lock would end with the first statement and the chain fork.
    return manager.queryRunner?.isTransactionActive ? run(manager) : manager.transaction(run);
  }

  /**
   * Appends inside a transaction the caller holds on a raw pg client (ingestion streams with COPY,
   * which TypeORM does not do), as the last statement before its COMMIT.
   */
  appendOnClient(client: PoolClient, event: AuditEventInput): Promise<{ seq: number; hash: string }> {
    const querier: Querier = {
      query: async <T>(sql: string, params?: unknown[]) => (await client.query(sql, params)).rows as T,
    };
    return this.appendIn(querier, storableContent(event));
  }

  private async appendIn(
    manager: Querier,
    content: Omit<AuditEventContent, 'seq' | 'at'>,
  ): Promise<{ seq: number; hash: string }> {
    // Moving the head takes its row lock, which serialises every append into one chain until COMMIT.
    // The time is read after the lock is granted (RETURNING), so it follows the event before; it is
    // truncated to milliseconds so the API's DateTime shows exactly the stored instant.
    const [head] = await manager.query<{ seq: string; prev_hash: string; at_micros: string }[]>(`
      WITH moved AS (
        UPDATE audit_head SET seq = seq + 1 WHERE id = 1
        RETURNING seq::text AS seq, hash AS prev_hash,
          (extract(epoch FROM date_trunc('milliseconds', clock_timestamp())) * 1000000)::bigint::text AS at_micros
      )
      SELECT * FROM moved`);
    if (!head) throw new Error('audit_head is missing: the audit log cannot be appended to');
    const at = isoFromMicros(head.at_micros);
    if (!at) throw new Error(`the database clock is out of range: ${head.at_micros}`);
    const event = sealEvent(head.prev_hash, { ...content, seq: Number(head.seq), at });
    const counted = event.agreementId !== null && REGISTER_ACTIONS.has(event.action);
    await manager.query(
      `WITH appended AS (
         INSERT INTO audit_event (seq, at, actor_user_id, actor_agency_id, action, decision, reason, purpose,
           dataset_id, agreement_id, agreement_version, fields, row_count, details, prev_hash, hash)
         VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[], $13, $14::jsonb, $15, $16)
       )${counted ? REGISTER_COUNT_SQL : ''}
       UPDATE audit_head SET hash = $16 WHERE id = 1`,
      [
        head.seq,
        event.at,
        event.actorUserId,
        event.actorAgencyId,
        event.action,
        event.decision,
        event.reason,
        event.purpose,
        event.datasetId,
        event.agreementId,
        event.agreementVersion,
        event.fields,
        event.rowCount,
        // The canonical text is what was hashed; jsonb gives back the same value.
        event.details === null ? null : canonicalJson(event.details),
        event.prevHash,
        event.hash,
        ...(counted ? registerCountParams(event) : []),
      ],
    );
    this.metrics.auditAppends.inc({ decision: event.decision });
    return { seq: event.seq, hash: event.hash };
  }

  /**
   * A page of the events the caller may see, newest first. `after` is the `endCursor` of the page
   * before; pages stay stable while events are appended.
   */
  async list(
    ctx: RequestContext,
    filter: AuditFilter | null | undefined,
    first: number | null | undefined,
    after: string | null | undefined,
  ): Promise<AuditEventConnectionModel> {
    authorizeType(ctx.principal, 'read', 'AuditEvent');
    const limit = first ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > AUDIT_PAGE_MAX) {
      throw badInput(`first must be between 1 and ${AUDIT_PAGE_MAX}`);
    }
    const visibility = auditVisibility(ctx.principal, await this.visibilityTables());
    const query = this.events.createQueryBuilder('e').where(visibility.sql, visibility.params);
    if (filter?.action != null) query.andWhere('e.action = :filterAction', { filterAction: filter.action });
    if (filter?.decision != null) {
      query.andWhere('e.decision = :filterDecision', { filterDecision: filter.decision });
    }
    for (const key of ['datasetId', 'agreementId', 'actorAgencyId'] as const) {
      const id = filter?.[key];
      if (id == null) continue;
      if (!UUID.test(id)) throw badInput(`filter.${key} is not a valid id`);
      query.andWhere(`e.${key} = :${key}`, { [key]: id.toLowerCase() });
    }
    if (filter?.from && filter?.to && filter.from > filter.to) {
      throw badInput('filter.from must not be after filter.to');
    }
    if (filter?.from) query.andWhere('e.at >= :filterFrom', { filterFrom: filter.from });
    if (filter?.to) query.andWhere('e.at < :filterTo', { filterTo: filter.to });
    if (after != null) query.andWhere('e.seq < :afterSeq', { afterSeq: decodeCursor(after) });
    const rows = await query
      .orderBy('e.seq', 'DESC')
      .limit(limit + 1)
      .getMany();
    const nodes = rows.slice(0, limit).map(toModel);
    const last = nodes[nodes.length - 1];
    return {
      nodes,
      pageInfo: { hasNextPage: rows.length > limit, endCursor: last ? encodeCursor(last.seq) : null },
    };
  }

  /**
   * Verifies the whole chain in one consistent snapshot, streaming it in batches: appends made
   * meanwhile are neither waited for nor mistaken for tampering.
   */
  verify(ctx: RequestContext): Promise<ChainVerification> {
    authorizeType(ctx.principal, 'read', 'AuditEvent');
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      await manager.query('SET TRANSACTION READ ONLY');
      return verifyChain((sql, params) => manager.query(sql, params));
    });
  }

  /**
   * Whether the agreements table exists yet (another library's migration adds it). Looked up until
   * found, so a broker that migrated meanwhile starts showing stewards their agreements' events.
   */
  private async visibilityTables(): Promise<VisibilityTables> {
    if (!this.agreementsTable) {
      const [row] = await this.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_attribute
          WHERE attrelid = to_regclass('agreement') AND NOT attisdropped
            AND attname IN ('id', 'provider_agency_id', 'recipient_agency_id')`,
      );
      this.agreementsTable = row.n === 3;
    }
    return { agreements: this.agreementsTable };
  }
}

function toModel(row: AuditEventEntity): AuditEventModel {
  const denied = row.decision === 'DENY';
  const operations = row.details?.operations;
  return {
    seq: row.seq,
    at: row.at,
    actorUserId: row.actorUserId,
    actorAgencyId: row.actorAgencyId,
    action: row.action,
    decision: row.decision as AuditDecision,
    reason: row.reason,
    purpose: row.purpose,
    datasetId: row.datasetId,
    agreementId: row.agreementId,
    agreementVersion: row.agreementVersion,
    fields: row.fields,
    rowCount: row.rowCount,
    plane: denied ? refusalPlane(row.action, row.details) : null,
    refusals: denied ? refusalCount(row.rowCount) : null,
    operations:
      denied && Array.isArray(operations)
        ? operations.filter((o): o is string => typeof o === 'string')
        : null,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

const CURSOR = /^seq:([1-9][0-9]{0,15})$/;

/** The opaque cursor after an event. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`seq:${seq}`, 'utf8').toString('base64url');
}

/** The seq a cursor stands for; BAD_USER_INPUT when it is not one of ours. */
export function decodeCursor(cursor: string): number {
  const match = /^[A-Za-z0-9_-]{1,32}$/.test(cursor)
    ? CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'))
    : null;
  const seq = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(seq)) throw badInput('after is not a valid cursor');
  return seq;
}

/** Checks and normalises an event's fields into exactly the values the database will return. */
function storableContent(event: AuditEventInput): Omit<AuditEventContent, 'seq' | 'at'> {
  if (typeof event.action !== 'string' || !/^[A-Z][A-Z0-9_]{0,63}$/.test(event.action)) {
    throw new TypeError(`audit action must be an AuditAction, got ${String(event.action)}`);
  }
  if (event.decision !== 'ALLOW' && event.decision !== 'DENY') {
    throw new TypeError(`audit decision must be ALLOW or DENY, got ${String(event.decision)}`);
  }
  let details: { [key: string]: JsonValue } | null = null;
  if (event.details != null) {
    const json = toStorableJson(event.details);
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      throw new TypeError('audit details must be a JSON object');
    }
    details = json;
  }
  if (
    event.fields != null &&
    !(Array.isArray(event.fields) && event.fields.every((f) => typeof f === 'string'))
  ) {
    throw new TypeError('audit fields must be an array of strings');
  }
  return {
    actorUserId: uuidOrNull(event.actorUserId, 'actorUserId'),
    actorAgencyId: uuidOrNull(event.actorAgencyId, 'actorAgencyId'),
    action: event.action,
    decision: event.decision,
    reason: textOrNull(event.reason),
    purpose: textOrNull(event.purpose),
    datasetId: uuidOrNull(event.datasetId, 'datasetId'),
    agreementId: uuidOrNull(event.agreementId, 'agreementId'),
    agreementVersion: int4OrNull(event.agreementVersion, 'agreementVersion'),
    fields: event.fields == null ? null : event.fields.map(storableText),
    rowCount: int4OrNull(event.rowCount, 'rowCount'),
    details,
  };
}

// PostgreSQL prints uuids in lowercase: hashing another spelling would hash a value never read back.
function uuidOrNull(value: string | null | undefined, name: string): string | null {
  if (value == null) return null;
  if (typeof value !== 'string' || !UUID.test(value)) throw new TypeError(`audit ${name} must be a uuid`);
  return value.toLowerCase();
}

function textOrNull(value: string | null | undefined): string | null {
  return value == null ? null : storableText(String(value));
}

function int4OrNull(value: number | null | undefined, name: string): number | null {
  if (value == null) return null;
  if (!Number.isInteger(value) || value < INT4_MIN || value > INT4_MAX) {
    throw new TypeError(`audit ${name} must be a 32-bit integer`);
  }
  return value;
}
