import type { PoolClient } from 'pg';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import { type RequestContext, authorizeType } from '@broker/auth';
import { badInput, Database, MetricsService, isUuid } from '@broker/core';
import type { AuditAction, AuditDecision } from './audit-action.enum';
import {
  type AuditEventContent,
  type ChainVerification,
  type JsonValue,
  type KnownHead,
  REGISTER_ACTIONS,
  ROW_ACTIONS,
  canonicalJson,
  registerCountsDenialSql,
  contentOf,
  storableText,
  toStorableJson,
} from './audit-chain';
import { AuditEventEntity } from './audit-event.entity';
import type { AuditEventConnectionModel, AuditEventModel } from './audit-event.model';
import type { AuditFilter } from './audit-filter.input';
import { type VisibilityTables, auditVisibility } from './audit-visibility';
import { verifyChain } from './audit-verifier';
import { refusalCount, refusalPlane } from './refusal-plane';
import { ReleaseIndexer } from './release-indexer';

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
  /**
   * The records a release returned (the data plane's QUERY and EXPORT events), stored beside the
   * event in `release_record` in the same statement, for subject access reports: their row ids as
   * PostgreSQL array text ('{1,2,3}'), or the id of a list PostgreSQL staged (see
   * {@link ReleaseStaging}). Not hashed: put the list's digest in `details`. Indexed later, off the
   * append (ReleaseIndexer).
   */
  release?: ReleaseInput;
  /**
   * A release's condition: it is recorded only if it still holds once the append holds the chain
   * head's lock (see {@link ReleaseCondition}); if not, nothing of its group is written and the
   * append fails with {@link ReleaseWithdrawnError}.
   */
  onlyIf?: ReleaseCondition;
}

/**
 * What must still hold, when a release is recorded, for it to be recorded at all: the policy stamp
 * of recipient `agencyId` (the caller's agency) its rows were read and decided under is still its
 * stamp (nothing in force for that agency changed since: see MOVE_POLICY_STAMP_SQL), the API key it was
 * read under (`apiKeyId`, where given) is not revoked (no rotation, no deactivation since), and the time the event is sealed with is before `before` (the
 * end of the window of every agreement it is answered under). Checked in the append's statement,
 * which holds the key's row and the stamp's from its check to its commit: a change committed before
 * then is seen, and one committed later follows the release in the chain.
 *
 * The key is checked on its own row, not through the stamp, which every instance's policy of the
 * agency depends on: a user who rotates its key in a loop withdraws its own releases only, and
 * neither reloads anyone's policy nor withdraws anyone else's release. The stamp is the recipient
 * agency's own: a change of another agency's agreements withdraws nothing of this one's.
 */
export interface ReleaseCondition {
  policyStamp: number;
  /** The recipient agency whose policy stamp `policyStamp` is. */
  agencyId: string;
  before: Date;
  apiKeyId?: string;
}

/**
 * An append refused because the {@link ReleaseCondition} of one or more of its events no longer
 * held: nothing of it was written. `positions` are those events' indices in the append.
 */
export class ReleaseWithdrawnError extends Error {
  constructor(readonly positions: readonly number[]) {
    super('the release was withdrawn: an agreement, a key or a window changed before it was recorded');
  }
}

/**
 * Which records a release returned: their ids as array text, or a list staged in the database
 * (`staged`, the id {@link ReleaseStaging.stage} returned), which the append moves into the record;
 * an append whose staged list is gone, or is another dataset's, fails and writes nothing.
 */
export type ReleaseInput = { datasetId: string; rids: string } | { datasetId: string; staged: string };

/** The content of an event to append, and the records it released. */
type Appendable = Omit<AuditEventContent, 'seq' | 'at'> & {
  release?: ReleaseInput;
  onlyIf?: ReleaseCondition;
};

/** The actor fields of an event caused by the caller of a request. */
export function auditActor(ctx: RequestContext): Pick<AuditEventInput, 'actorUserId' | 'actorAgencyId'> {
  return { actorUserId: ctx.principal.userId, actorAgencyId: ctx.principal.agencyId };
}

/** The data requests the public register counts (see REGISTER_ACTIONS), and of those the row releases. */
const REGISTER_COUNTED: ReadonlySet<string> = new Set(REGISTER_ACTIONS);
const ROW_RELEASES: ReadonlySet<string> = new Set(ROW_ACTIONS);

/**
 * The one statement of an append, for a group of any size (one JSON array of rows, and the array of
 * their release lists): it locks the
 * chain head (`FOR UPDATE`: appends are serial), reads its seq and hash and the time, seals each
 * event after the one before (`sha256` of the previous hash, a newline and the event's canonical
 * JSON, which Node writes with the time and seq left for the database to fill in: see
 * {@link eventRow}), and writes the events, the records they released, the register's counts and
 * the head. In a transaction of its own it is one round trip, and the head's lock is held only while
 * it runs and commits.
 *
 * A group with a release's condition (see {@link ReleaseCondition}) first takes the rows of the
 * API keys its releases were read under (`keys`) and the rows of the policy stamps of their
 * recipient agencies (`gate`), `FOR SHARE`, each in the order of its primary key:
 * it waits for a revocation of one of those keys, or a change of one of the stamps, under way to commit,
 * and reads them as committed, not as its snapshot saw them; and no such change commits until this
 * statement has (it waits for the release, which precedes it in the chain). Then the head, as every
 * append. Every transaction that revokes a key or moves the stamp does so before it appends its own
 * event, so the locks are always taken key and stamp first, head second, and no two appends wait
 * for each other. If a condition no longer holds (a key revoked, another stamp, or the time the
 * events are sealed with is past its `before`), nothing is sealed or written and the statement
 * names the events (`withdrawn`).
 *
 * The register's counts move in the append's own statement so that they commit or roll back with
 * the events: one row per (agreement, UTC month) and, for released rows, per (agreement, UTC day).
 * Appends are already serialised by the chain head, so these rows add no wait of their own; and no
 * row is shared by every append (each agreement has its own), so nothing here becomes the one hot row
 * if the chain is ever sharded. A denial counts only when a party's user made it. An event naming an
 * agreement that does not exist counts nowhere.
 */
function appendSql(staged: boolean): string {
  // A group with a staged list (an export's) takes the list in, checked to be its dataset's (a
  // missing or other list leaves rids null, which release_record refuses), and deletes it; the
  // other groups, every page's, read and lock nothing more.
  const stagedColumn = staged ? ', release_staged uuid' : '';
  // The lists as array text, one per event in order ($2, null where none): apart from the events'
  // JSON, so that a 1,000-row page's list is neither parsed as JSON nor carried through the chain.
  const lists = `unnest($2::text[]) WITH ORDINALITY AS l (rids, i)`;
  const released = staged
    ? `SELECT s.seq, s.release_dataset_id,
              CASE WHEN s.release_staged IS NULL THEN l.rids::bigint[]
                   WHEN r.dataset_id = s.release_dataset_id THEN r.rids END
         FROM sealed s LEFT JOIN ${lists} ON l.i = s.i LEFT JOIN release_staged r ON r.id = s.release_staged
        WHERE l.rids IS NOT NULL OR s.release_staged IS NOT NULL
     ),
     unstaged AS (
       DELETE FROM release_staged WHERE id IN (SELECT release_staged FROM sealed WHERE release_staged IS NOT NULL)`
    : `SELECT s.seq, s.release_dataset_id, l.rids::bigint[] FROM ${lists} JOIN sealed s ON s.i = l.i
        WHERE l.rids IS NOT NULL`;
  return `
  WITH RECURSIVE
  batch AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS x (
      i int, pre text, mid text, actor_user_id uuid, actor_agency_id uuid, action text, decision text,
      reason text, purpose text, dataset_id uuid, agreement_id uuid, agreement_version int,
      fields text[], row_count int, details jsonb,
      counted boolean, allowed bigint, denied bigint, rows_released bigint,
      release_dataset_id uuid, stamp bigint, stamp_agency_id uuid, until timestamptz, key_id uuid${stagedColumn})
  ),
  keys AS MATERIALIZED (
    -- By the key's index, whatever the number of keys (revoked ones pile up with every rotation): an
    -- array of the group's keys, not a join, which PostgreSQL plans as a scan of the whole table.
    SELECT k.id FROM api_key k
     WHERE k.id = ANY (ARRAY(SELECT DISTINCT key_id FROM batch WHERE key_id IS NOT NULL))
       AND k.revoked_at IS NULL
     ORDER BY k.id
       FOR SHARE
  ),
  gate AS MATERIALIZED (
    -- The policy stamps of the group's recipient agencies, by their index as the keys are.
    SELECT p.agency_id, p.stamp FROM agency_policy_stamp p
     WHERE p.agency_id = ANY (ARRAY(SELECT DISTINCT stamp_agency_id FROM batch WHERE stamp IS NOT NULL))
       AND (SELECT count(*) FROM keys) >= 0
     ORDER BY p.agency_id
       FOR SHARE
  ),
  head AS MATERIALIZED (
    SELECT seq, hash, date_trunc('milliseconds', clock_timestamp()) AS at
      FROM audit_head WHERE id = 1 AND (SELECT count(*) FROM gate) >= 0 FOR UPDATE
  ),
  withdrawn AS MATERIALIZED (
    SELECT coalesce(array_agg(b.i ORDER BY b.i), '{}') AS i FROM batch b CROSS JOIN head h
     WHERE (b.stamp IS NOT NULL
            AND b.stamp IS DISTINCT FROM (SELECT g.stamp FROM gate g WHERE g.agency_id = b.stamp_agency_id))
        OR h.at >= b.until
        OR (b.key_id IS NOT NULL AND b.key_id NOT IN (SELECT id FROM keys))
  ),
  chain (i, seq, prev_hash, hash) AS (
    SELECT 0, h.seq, NULL::text, h.hash FROM head h WHERE cardinality((SELECT i FROM withdrawn)) = 0
    UNION ALL
    SELECT b.i, c.seq + 1, c.hash,
           encode(sha256(convert_to(c.hash || E'\\n' || b.pre
             || to_char(h.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
             || b.mid || (c.seq + 1)::text || '}', 'UTF8')), 'hex')
      FROM chain c JOIN batch b ON b.i = c.i + 1 CROSS JOIN head h
  ),
  sealed AS MATERIALIZED (SELECT c.seq, c.prev_hash, c.hash, b.* FROM chain c JOIN batch b ON b.i = c.i),
  appended AS (
    INSERT INTO audit_event (seq, at, actor_user_id, actor_agency_id, action, decision, reason, purpose,
      dataset_id, agreement_id, agreement_version, fields, row_count, details, prev_hash, hash)
    SELECT s.seq, h.at, s.actor_user_id, s.actor_agency_id, s.action, s.decision, s.reason, s.purpose,
      s.dataset_id, s.agreement_id, s.agreement_version, s.fields, s.row_count, s.details, s.prev_hash, s.hash
      FROM sealed s CROSS JOIN head h ORDER BY s.seq
  ),
  released AS (
    INSERT INTO release_record (audit_seq, dataset_id, rids)
    ${released}
  ),
  counted AS (
    SELECT s.agreement_id, s.allowed, s.rows_released,
           CASE WHEN ${registerCountsDenialSql('s.actor_agency_id', 'a')} THEN s.denied ELSE 0 END AS denied
      FROM sealed s JOIN agreement a ON a.id = s.agreement_id
     WHERE s.counted
  ),
  monthly AS (
    INSERT INTO register_month AS m (agreement_id, month, allowed, denied, rows_released)
    SELECT c.agreement_id, date_trunc('month', h.at AT TIME ZONE 'UTC')::date,
           sum(c.allowed), sum(c.denied), sum(c.rows_released)
      FROM counted c CROSS JOIN head h GROUP BY c.agreement_id, h.at
    ON CONFLICT (agreement_id, month) DO UPDATE
      SET allowed = m.allowed + EXCLUDED.allowed, denied = m.denied + EXCLUDED.denied,
          rows_released = m.rows_released + EXCLUDED.rows_released
  ),
  daily AS (
    INSERT INTO register_release_day AS d (agreement_id, day, rows_released)
    SELECT c.agreement_id, (h.at AT TIME ZONE 'UTC')::date, sum(c.rows_released)
      FROM counted c CROSS JOIN head h WHERE c.rows_released > 0
     GROUP BY c.agreement_id, h.at
    ON CONFLICT (agreement_id, day) DO UPDATE SET rows_released = d.rows_released + EXCLUDED.rows_released
  ),
  moved AS (
    UPDATE audit_head
       SET seq = (SELECT max(seq) FROM sealed),
           hash = (SELECT hash FROM sealed ORDER BY seq DESC LIMIT 1)
     WHERE id = 1 AND EXISTS (SELECT 1 FROM sealed)
  )
  SELECT (SELECT json_agg(json_build_array(seq::text, hash) ORDER BY seq) FROM sealed)::text AS sealed,
         (SELECT i FROM withdrawn) AS withdrawn`;
}

/** {@link appendSql} for groups that release no staged list (every page's), and for those that do. */
const APPEND_SQL = appendSql(false);
const APPEND_STAGED_SQL = appendSql(true);

/** Where a content's canonical JSON has its time and its seq, which the database fills in. */
const AT_MARK = '\u0000at';
const AT_MEMBER = `"at":${JSON.stringify(AT_MARK)}`;
const SEQ_END = '"seq":0}';

/**
 * An event's row for {@link APPEND_SQL}: its canonical JSON as two pieces around the time and after
 * them the seq, both of which the database knows only once it holds the chain head's lock; what it
 * adds to the register's counts; and which dataset its release is of (the list itself goes apart, as
 * the statement's second parameter, or is staged). The database hashes
 * `prevHash + '\n' + pre + at + mid + seq + '}'`: exactly {@link hashEvent}'s input, since the
 * canonical form sorts `at` between `agreementVersion` and `datasetId`, and `seq` last.
 */
function eventRow(i: number, content: Appendable) {
  const { release, onlyIf, ...stored } = content;
  const canonical = canonicalJson(contentOf({ ...stored, seq: 0, at: AT_MARK }));
  const at = canonical.indexOf(AT_MEMBER);
  if (at < 0 || !canonical.endsWith(SEQ_END)) throw new Error('canonical JSON without its at and seq');
  const counted = content.agreementId !== null && REGISTER_COUNTED.has(content.action);
  const allowed = content.decision === 'ALLOW';
  const rows = allowed && ROW_RELEASES.has(content.action) ? Math.max(0, content.rowCount ?? 0) : 0;
  return {
    i,
    pre: `${canonical.slice(0, at)}"at":"`,
    mid: `"${canonical.slice(at + AT_MEMBER.length, -SEQ_END.length + '"seq":'.length)}`,
    actor_user_id: content.actorUserId,
    actor_agency_id: content.actorAgencyId,
    action: content.action,
    decision: content.decision,
    reason: content.reason,
    purpose: content.purpose,
    dataset_id: content.datasetId,
    agreement_id: content.agreementId,
    agreement_version: content.agreementVersion,
    fields: content.fields,
    row_count: content.rowCount,
    // The canonical value was hashed; jsonb keeps the same value.
    details: content.details,
    counted,
    allowed: allowed ? 1 : 0,
    denied: allowed ? 0 : 1,
    rows_released: rows,
    release_dataset_id: release?.datasetId ?? null,
    release_staged: release && 'staged' in release ? release.staged : null,
    stamp: onlyIf ? String(onlyIf.policyStamp) : null,
    stamp_agency_id: onlyIf?.agencyId ?? null,
    until: onlyIf ? onlyIf.before.toISOString() : null,
    key_id: onlyIf?.apiKeyId ?? null,
  };
}

/** At most this many events in one append (the data plane's groups hold at most 64). */
const MAX_GROUP = 1000;

/** `auditEvents` page size bounds. */
export const AUDIT_PAGE_MAX = 1000;

const INT4_MIN = -(2 ** 31);
const INT4_MAX = 2 ** 31 - 1;

/**
 * The audit log: appends events to one hash chain, lists them to those who may see them, and
 * verifies the chain. Other libraries call {@link append} for every data access, denial and
 * control-plane change.
 *
 * @example
 * await db.transaction(async ({ manager }) => {
 *   const rows = await manager.query(compiledSql, params);
 *   await audit.append({ ...auditActor(ctx), action: AuditAction.QUERY, decision: 'ALLOW', rowCount: rows.length }, manager);
 *   return rows; // returned only if the append committed with them
 * });
 */
/** What an append needs of a connection inside a transaction. */
interface Querier {
  /** `name` asks for a prepared statement where the connection can keep one (TypeORM's cannot). */
  query<T>(sql: string, params?: unknown[], name?: string): Promise<T>;
}

@Injectable()
export class AuditService {
  private agreementsTable = false;

  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    @InjectRepository(AuditEventEntity) private readonly events: Repository<AuditEventEntity>,
    private readonly metrics: MetricsService,
    private readonly releases: ReleaseIndexer,
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
   * Without one (or outside a transaction), its one statement is a transaction of its own. Invalid
   * input throws a TypeError before any lock.
   */
  async append(event: AuditEventInput, manager?: EntityManager): Promise<{ seq: number; hash: string }> {
    const content = storableContent(event);
    if (!manager) return (await this.appendAlone([content]))[0];
    return (await this.write(manager, [content]))[0];
  }

  /**
   * Appends inside a transaction the caller holds on a raw pg client (ingestion streams with COPY,
   * which TypeORM does not do), as the last statement before its COMMIT.
   */
  async appendOnClient(client: PoolClient, event: AuditEventInput): Promise<{ seq: number; hash: string }> {
    return (await this.appendAllOnClient(client, [event]))[0];
  }

  /**
   * Appends events in order, as {@link appendOnClient} does one, in one statement whatever their
   * number. Invalid input throws a TypeError before any statement.
   */
  appendAllOnClient(client: PoolClient, events: AuditEventInput[]): Promise<{ seq: number; hash: string }[]> {
    return this.write(onClient(client), events.map(appendable));
  }

  /**
   * The data plane's group commit: appends events in one statement, as a transaction of its own,
   * in one round trip whatever their number; the chain head's lock is held while that statement
   * runs and commits, and by nothing between round trips. Resolves once they are durable; invalid
   * input throws a TypeError before any statement.
   */
  async appendGroup(events: AuditEventInput[]): Promise<{ seq: number; hash: string }[]> {
    const sealed = await this.appendAlone(events.map(appendable));
    // Committed: the releases' ids are copied into the index that subject access searches, later. A
    // staged list (an export's) is copied once its rows are sent (see DataExportService), not while
    // its COPY runs: the copy of a large list would take the machine from the export itself.
    if (events.some((e) => e.release && 'rids' in e.release)) this.releases.schedule();
    return sealed;
  }

  /** Appends checked contents in their own one-statement transaction, on a pooled connection. */
  private appendAlone(contents: Appendable[]): Promise<{ seq: number; hash: string }[]> {
    return this.db.connection((client) => this.write(onClient(client), contents));
  }

  /**
   * Writes a group in {@link APPEND_SQL}: it takes the chain head's lock, reads the hash the head
   * holds and the time (truncated to milliseconds, so the API's DateTime shows exactly the stored
   * instant), seals the events in order after it, and writes them, the records they released, the
   * register's counts and the new head. Every append goes this way: one home for the chain's rule
   * on the writing side, checked against the verifier's own (`hashEvent`), which recomputes it.
   */
  private async write(manager: Querier, contents: Appendable[]): Promise<{ seq: number; hash: string }[]> {
    if (!contents.length) return [];
    // The statement seals a group in order (a recursive step per event): groups stay small.
    if (contents.length > MAX_GROUP) throw new TypeError(`a group holds 1 to ${MAX_GROUP} events`);
    const rows = contents.map((content, i) => eventRow(i + 1, content));
    const staged = rows.some((row) => row.release_staged !== null);
    const lists = contents.map(({ release }) => (release && 'rids' in release ? release.rids : null));
    const result = await manager.query<unknown[]>(
      staged ? APPEND_STAGED_SQL : APPEND_SQL,
      [JSON.stringify(rows), lists],
      staged ? 'audit_append_staged' : 'audit_append',
    );
    // TypeORM's entity manager answers an UPDATE with [rows, count]; a pg client with the rows.
    const [row] = (Array.isArray(result[0]) ? result[0] : result) as {
      sealed: string | null;
      withdrawn: number[] | null;
    }[];
    // A condition that no longer held: nothing was written (see ReleaseCondition).
    if (row?.withdrawn?.length) throw new ReleaseWithdrawnError(row.withdrawn.map((i) => i - 1));
    // No head row, no update: the log cannot be appended to, and nothing was written.
    if (!row?.sealed) throw new Error('audit_head is missing: the audit log cannot be appended to');
    for (const content of contents) this.metrics.auditAppends.inc({ decision: content.decision });
    return (JSON.parse(row.sealed) as [string, string][]).map(([seq, hash]) => ({
      seq: Number(seq),
      hash,
    }));
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
      if (!isUuid(id)) throw badInput(`filter.${key} is not a valid id`);
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
   * meanwhile are neither waited for nor mistaken for tampering. The log must still hold each of
   * `knownHeads`, heads written down earlier (BAD_USER_INPUT when one is not a head at all).
   */
  verify(ctx: RequestContext, knownHeads?: readonly KnownHead[] | null): Promise<ChainVerification> {
    authorizeType(ctx.principal, 'read', 'AuditEvent');
    const heads = parseKnownHeads(knownHeads ?? []);
    return this.db.transaction(
      ({ manager }) => verifyChain((sql, params) => manager.query(sql, params), { knownHeads: heads }),
      {
        isolation: 'REPEATABLE READ',
        readOnly: true,
        carrier: ctx,
      },
    );
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

/** At most this many heads written down earlier in one verification. */
export const KNOWN_HEADS_MAX = 100;

/** Heads written down earlier, checked: seq a non-negative integer, hash 64 hex digits (lowercased). */
export function parseKnownHeads(heads: readonly KnownHead[]): KnownHead[] {
  if (heads.length > KNOWN_HEADS_MAX) throw badInput(`at most ${KNOWN_HEADS_MAX} known heads`);
  return heads.map(({ seq, hash }) => {
    if (!Number.isSafeInteger(seq) || seq < 0) throw badInput("a known head's seq is not a seq");
    if (typeof hash !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hash)) {
      throw badInput("a known head's hash is not 64 hexadecimal digits");
    }
    return { seq, hash: hash.toLowerCase() };
  });
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

/**
 * Statements on a raw pg connection, as a {@link Querier}; a named one is prepared once per
 * connection (its plan is the same every time).
 */
function onClient(client: PoolClient): Querier {
  return {
    query: async <T>(text: string, values?: unknown[], name?: string) =>
      (await client.query(name ? { name, text, values } : { text, values })).rows as T,
  };
}

/**
 * Whether `text` is an array text of row ids, `{1,2,3}`: one or more runs of 1 to 19 digits,
 * comma-separated, in braces. A loop, not a regular expression: an export's list holds a million ids,
 * and a repeated group over it exhausts the regular expression engine's stack.
 */
export function isRidList(text: string): boolean {
  const last = text.length - 1;
  if (last < 2 || text.charCodeAt(0) !== 0x7b || text.charCodeAt(last) !== 0x7d) return false;
  let digits = 0;
  for (let i = 1; i < last; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 19) return false;
    } else if (c === 0x2c && digits > 0) {
      digits = 0;
    } else {
      return false;
    }
  }
  return digits > 0;
}

/** An event's content and its release, checked (a TypeError before any statement). */
function appendable(event: AuditEventInput): Appendable {
  const content: Appendable = storableContent(event);
  if (event.onlyIf != null) {
    const { policyStamp, agencyId, before } = event.onlyIf;
    if (!Number.isSafeInteger(policyStamp) || policyStamp < 0) {
      throw new TypeError('audit onlyIf.policyStamp must be a non-negative integer');
    }
    if (!isUuid(agencyId)) {
      throw new TypeError('audit onlyIf.agencyId must be a uuid');
    }
    if (!(before instanceof Date) || Number.isNaN(before.getTime())) {
      throw new TypeError('audit onlyIf.before must be a valid Date');
    }
    const { apiKeyId } = event.onlyIf;
    if (apiKeyId !== undefined && !isUuid(apiKeyId)) {
      throw new TypeError('audit onlyIf.apiKeyId must be a uuid');
    }
    content.onlyIf = {
      policyStamp,
      agencyId: agencyId.toLowerCase(),
      before: new Date(before.getTime()),
      ...(apiKeyId !== undefined ? { apiKeyId: apiKeyId.toLowerCase() } : {}),
    };
  }
  if (event.release != null) {
    const { datasetId } = event.release;
    if (!isUuid(datasetId)) {
      throw new TypeError('audit release.datasetId must be a uuid');
    }
    if ('staged' in event.release) {
      const { staged } = event.release;
      if (!isUuid(staged) || 'rids' in event.release) {
        throw new TypeError('audit release.staged must be the uuid of a staged list, without rids');
      }
      content.release = { datasetId: datasetId.toLowerCase(), staged: staged.toLowerCase() };
    } else {
      const { rids } = event.release;
      if (typeof rids !== 'string' || !isRidList(rids)) {
        throw new TypeError("audit release.rids must be an array text of row ids ('{1,2}')");
      }
      content.release = { datasetId: datasetId.toLowerCase(), rids };
    }
  }
  return content;
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
  if (!isUuid(value)) throw new TypeError(`audit ${name} must be a uuid`);
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
