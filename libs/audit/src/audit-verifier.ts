import {
  ACCOUNT_ACTIONS,
  type ChainVerification,
  type ChainedAuditEvent,
  ChainChecker,
  GENESIS_HASH,
  IN_FORCE_REASON,
  REGISTER_ACTIONS,
  ROW_ACTIONS,
  contentDigestSql,
  exactJsonNumbers,
  type JsonValue,
  type KnownHead,
  accountDigestSql,
  isoFromMicros,
  microsSql,
  registerCountsDenialSql,
  releaseDigestSql,
  sqlNames,
} from './audit-chain';
import { AuditAction } from './audit-action.enum';

/**
 * Runs one SQL statement and returns its rows. Verification needs all its statements to see one
 * snapshot: pass a function bound to one connection inside a REPEATABLE READ transaction.
 * Kept free of Nest and TypeORM so `scripts/audit-verify.ts` runs it on a bare pg client.
 */
export type SqlQuery = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** How many events verification reads per statement; memory stays bounded by it. */
export const VERIFY_BATCH_SIZE = 5000;

// Everything is read as the text PostgreSQL stores, not through driver type parsers another part of
// the process could have changed. Statements order by `e.seq`: a bare `seq` would name this text.
const CHAIN_COLUMNS = `
  e.seq::text AS seq, ${microsSql('e.at')} AS at_micros,
  e.actor_user_id::text AS actor_user_id, e.actor_agency_id::text AS actor_agency_id,
  e.action, e.decision, e.reason, e.purpose, e.dataset_id::text AS dataset_id,
  e.agreement_id::text AS agreement_id, e.agreement_version, e.fields, e.row_count,
  e.details::text AS details, e.prev_hash, e.hash,
  ${releaseDigestSql('r.rids')} AS release_digest, r.dataset_id::text AS release_dataset_id,
  CASE WHEN i.audit_seq IS NOT NULL
       THEN i.rids IS DISTINCT FROM r.rids OR i.dataset_id IS DISTINCT FROM r.dataset_id
       -- The index holds every release up to some point: one it lacks before that point is hidden
       -- from subject access reports (which search the record only past it).
       ELSE r.audit_seq IS NOT NULL AND r.audit_seq < (SELECT max(x.audit_seq) FROM release_index x)
  END AS index_wrong`;

/**
 * A batch of events in seq order (`events`: a statement over `audit_event` alone, its own index
 * range) with what is stored beside each: the record list of its release, if any, and that list's
 * copy in the release index, if copied yet, both looked up by the event's seq (the batch is cut
 * first, so each batch reads only its own lists, however long the log).
 */
const chainBatch = (events: string) => `SELECT ${CHAIN_COLUMNS} FROM (${events}) e
  -- One primary-key lookup per event (OFFSET 0 keeps them lookups: as a join, PostgreSQL would
  -- read the whole of both tables for every batch).
  LEFT JOIN LATERAL (SELECT r.audit_seq, r.dataset_id, r.rids FROM release_record r
                      WHERE r.audit_seq = e.seq OFFSET 0) r ON TRUE
  LEFT JOIN LATERAL (SELECT i.audit_seq, i.dataset_id, i.rids FROM release_index i
                      WHERE i.audit_seq = e.seq OFFSET 0) i ON TRUE
  ORDER BY e.seq`;

/**
 * The first release list (in `release_record`, or its copy in `release_index`) that belongs to no
 * event (to no record list, for a copy): an insertion, as an event the head does not count is.
 */
const ORPHAN_RELEASE_SQL = `
  SELECT min(o.seq)::text AS seq FROM (
    SELECT r.audit_seq AS seq FROM release_record r
     WHERE NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.seq = r.audit_seq)
    UNION ALL
    SELECT i.audit_seq FROM release_index i
     WHERE NOT EXISTS (SELECT 1 FROM release_record r WHERE r.audit_seq = i.audit_seq)) o`;

/**
 * The public register's counts (`register_month`, `register_release_day`), which the append moves in
 * its own statement, recomputed from the events by the same rules: per agreement and UTC month the
 * data requests allowed, those denied to a party's user and the rows released, and per UTC day the
 * rows released. The lowest seq of an event counted in a bucket whose stored counts differ, or `$1`
 * for a bucket that no event counts in. The counts are not in the chain; without this, whoever can
 * write to the database could make the register show fewer requests or rows than left, under a
 * valid chain.
 */
const REGISTER_MISMATCH_SQL = `
  WITH counted AS MATERIALIZED (
    SELECT e.seq, e.agreement_id, e.at AT TIME ZONE 'UTC' AS utc, e.decision = 'ALLOW' AS allowed,
           e.decision = 'DENY' AND ${registerCountsDenialSql('e.actor_agency_id', 'a')} AS denied,
           CASE WHEN e.decision = 'ALLOW' AND e.action IN ${sqlNames(ROW_ACTIONS)}
                THEN greatest(coalesce(e.row_count, 0), 0) ELSE 0 END AS rows
      FROM audit_event e JOIN agreement a ON a.id = e.agreement_id
     WHERE e.action IN ${sqlNames(REGISTER_ACTIONS)}
  ),
  months AS (
    SELECT agreement_id, date_trunc('month', utc)::date AS month, min(seq) AS seq,
           count(*) FILTER (WHERE allowed) AS allowed, count(*) FILTER (WHERE denied) AS denied,
           sum(rows)::bigint AS rows_released
      FROM counted GROUP BY 1, 2
  ),
  days AS (
    SELECT agreement_id, utc::date AS day, min(seq) AS seq, sum(rows)::bigint AS rows_released
      FROM counted WHERE rows > 0 GROUP BY 1, 2
  )
  SELECT min(coalesce(x.seq, $1::bigint))::text AS seq FROM (
    SELECT c.seq FROM months c FULL JOIN register_month m USING (agreement_id, month)
     WHERE (c.allowed, c.denied, c.rows_released) IS DISTINCT FROM (m.allowed, m.denied, m.rows_released)
    UNION ALL
    SELECT c.seq FROM days c FULL JOIN register_release_day d USING (agreement_id, day)
     WHERE c.rows_released IS DISTINCT FROM d.rows_released) x`;

/**
 * The agreements' terms and states (`agreement_version`, `agreement_approval`, `agreement_decline`,
 * `agreement`), which decide what the data plane releases, against the events that made them: the
 * lowest seq of an event vouching for something stored otherwise, or `$1` for something stored that
 * no event made. A version's terms must hash to the digest its proposing or amending event sealed
 * (events sealed before the digest was, from older brokers, vouch for their version's existence and
 * parties only), its validity columns must be its terms', and its agreement's parties the terms'
 * parties; every approval and decline must be an event's, by its agency; the version in force must
 * be one an approval event brought into force; a revoked agreement stays revoked. Without this,
 * whoever can write to the database could widen an agreement (a row filter dropped, a validity
 * extended, an approval added) under a valid chain.
 */
/** The events that make an agreement's version (and approve it for the proposer's agency). */
const MAKING = [AuditAction.AGREEMENT_PROPOSED, AuditAction.AGREEMENT_AMENDED];
/** The events that decide on a version or the agreement. */
const DECIDING = [
  AuditAction.AGREEMENT_APPROVED,
  AuditAction.AGREEMENT_DECLINED,
  AuditAction.AGREEMENT_REVOKED,
];
const AGREEMENT_MISMATCH_SQL = `
  WITH control AS MATERIALIZED (
    -- The agreements' events, read once (a data-plane event never makes or changes an agreement).
    SELECT e.seq, e.action, e.decision, e.reason, e.agreement_id, e.agreement_version, e.actor_agency_id,
           e.details
      FROM audit_event e
     WHERE e.action IN ${sqlNames([...MAKING, ...DECIDING])}
  ),
  made AS (
    SELECT DISTINCT ON (agreement_id, agreement_version) * FROM control
     WHERE action IN ${sqlNames(MAKING)}
     ORDER BY agreement_id, agreement_version, seq
  )
  SELECT min(x.seq)::text AS seq FROM (
    SELECT coalesce(e.seq, $1::bigint) AS seq
      FROM agreement_version v JOIN agreement a ON a.id = v.agreement_id
      LEFT JOIN made e ON e.agreement_id = v.agreement_id AND e.agreement_version = v.version
     WHERE e.seq IS NULL
        OR e.actor_agency_id NOT IN (a.provider_agency_id, a.recipient_agency_id)
        OR v.content->>'providerAgencyId' IS DISTINCT FROM a.provider_agency_id::text
        OR v.content->>'recipientAgencyId' IS DISTINCT FROM a.recipient_agency_id::text
        OR (e.details ? 'contentDigest' AND (
              e.details->>'contentDigest' IS DISTINCT FROM ${contentDigestSql('v.content')}
              OR v.valid_from IS DISTINCT FROM (v.content->>'validFrom')::timestamptz
              OR v.valid_until IS DISTINCT FROM (v.content->>'validUntil')::timestamptz))
    UNION ALL
    SELECT $1::bigint FROM agreement_approval p
     WHERE NOT EXISTS (
       SELECT 1 FROM control e
        WHERE e.agreement_id = p.agreement_id AND e.agreement_version = p.version
          AND e.actor_agency_id = p.agency_id AND e.decision = 'ALLOW'
          AND e.action IN ${sqlNames([...MAKING, AuditAction.AGREEMENT_APPROVED])})
    UNION ALL
    SELECT $1::bigint FROM agreement_decline d
     WHERE NOT EXISTS (
       SELECT 1 FROM control e
        WHERE e.agreement_id = d.agreement_id AND e.agreement_version = d.version
          AND e.actor_agency_id = d.agency_id AND e.action = '${AuditAction.AGREEMENT_DECLINED}')
    UNION ALL
    SELECT $1::bigint FROM agreement a
     WHERE a.in_force_version IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM control e
        WHERE e.agreement_id = a.id AND e.agreement_version = a.in_force_version
          AND e.action = '${AuditAction.AGREEMENT_APPROVED}' AND e.reason = $2)
    UNION ALL
    SELECT e.seq FROM control e JOIN agreement a ON a.id = e.agreement_id
     WHERE e.action = '${AuditAction.AGREEMENT_REVOKED}' AND a.revoked_at IS NULL) x`;

/**
 * The users and their API keys (`app_user`, `api_key`), which decide who may do what, against the
 * events that changed them ({@link ACCOUNT_ACTIONS}): each user's account must have the digest
 * ({@link accountDigestSql}) that the latest event naming it in `details.accounts` sealed. The lowest
 * seq of such an event whose account is stored otherwise (a role or agency changed, a key added,
 * moved, un-revoked or made a full key, a deactivation undone) or is gone, or `$1` for a user no
 * event vouches for, or while `account_found` still lists accounts to vouch for as found (the
 * accounts-vouched migration). Without this, whoever can write to the database could add a STEWARD
 * or an AUDITOR, or a key of an existing user, under a valid chain.
 */
const ACCOUNT_MISMATCH_SQL = `
  WITH vouched AS MATERIALIZED (
    -- Each account's latest event (read through the partial index of the accounts' events).
    SELECT DISTINCT ON (a.key) a.key AS user_id, a.value AS digest, e.seq
      FROM audit_event e
     CROSS JOIN LATERAL jsonb_each_text(
       CASE WHEN jsonb_typeof(e.details->'accounts') = 'object' THEN e.details->'accounts' END) a
     WHERE e.action IN ${sqlNames(ACCOUNT_ACTIONS)} AND e.decision = 'ALLOW'
     ORDER BY a.key, e.seq DESC
  )
  SELECT min(x.seq)::text AS seq FROM (
    SELECT coalesce(v.seq, $1::bigint) AS seq
      FROM app_user u LEFT JOIN vouched v ON v.user_id = u.id::text
     WHERE v.digest IS DISTINCT FROM ${accountDigestSql('u')}
    UNION ALL
    SELECT v.seq FROM vouched v WHERE NOT EXISTS (SELECT 1 FROM app_user u WHERE u.id::text = v.user_id)
    UNION ALL
    SELECT $1::bigint FROM account_found) x`;

/** One `audit_event` row as {@link CHAIN_COLUMNS} selects it. */
interface StoredRow {
  seq: string;
  at_micros: string | null;
  actor_user_id: string | null;
  actor_agency_id: string | null;
  action: string;
  decision: string;
  reason: string | null;
  purpose: string | null;
  dataset_id: string | null;
  agreement_id: string | null;
  agreement_version: number | null;
  fields: string[] | null;
  row_count: number | null;
  details: string | null;
  prev_hash: string;
  hash: string;
  /** The digest of the release list stored beside the event, if one is. */
  release_digest: string | null;
  release_dataset_id: string | null;
  /**
   * Whether the release index is wrong about the list: a copy that is not the list, or no copy where
   * later lists have theirs.
   */
  index_wrong: boolean;
}

/**
 * Whether what is stored beside an event agrees with what the event seals: the record list of a
 * release has the digest its event holds (`details.releaseDigest`) and the event's dataset, an event
 * without a digest has no list, and the release index holds the list's copy (once it holds a later
 * one) and that copy is the list. A list changed, removed, added or moved to another dataset would
 * change whom a subject access report names; the chain vouches for the list through its digest, and
 * this is where that is checked.
 */
function releaseIntact(row: StoredRow, event: ChainedAuditEvent): boolean {
  if (row.index_wrong) return false;
  const digest = event.details && typeof event.details === 'object' ? event.details.releaseDigest : undefined;
  if (digest === undefined) return row.release_digest === null;
  return row.release_digest === digest && row.release_dataset_id === row.dataset_id;
}

function storedEvent(row: StoredRow): ChainedAuditEvent {
  const at = row.at_micros === null ? null : isoFromMicros(row.at_micros);
  return {
    seq: Number(row.seq),
    // A timestamp no broker could have written cannot match its hash; any marker string will do.
    at: at ?? `unrepresentable:${row.at_micros}`,
    actorUserId: row.actor_user_id,
    actorAgencyId: row.actor_agency_id,
    action: row.action,
    decision: row.decision,
    reason: row.reason,
    purpose: row.purpose,
    datasetId: row.dataset_id,
    agreementId: row.agreement_id,
    agreementVersion: row.agreement_version,
    fields: row.fields,
    rowCount: row.row_count,
    details: row.details === null ? null : (JSON.parse(row.details) as { [key: string]: JsonValue }),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * Verifies the whole audit chain: reads the head, then streams events in seq order in batches,
 * recomputing every hash and link, and stops at the first break. `knownHeads` are heads written down
 * earlier (the register's `auditHead`): the log must still hold each, which is what shows a tail cut
 * off with `audit_head` rewound, or a log resealed, by someone who can write to the database.
 *
 * @example
 * await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
 * const result = await verifyChain(async (sql, params) => (await client.query(sql, params)).rows);
 */
export async function verifyChain(
  query: SqlQuery,
  options: { batchSize?: number; knownHeads?: readonly KnownHead[] } = {},
): Promise<ChainVerification> {
  const batchSize = options.batchSize ?? VERIFY_BATCH_SIZE;
  const [head] = (await query(`SELECT seq::text AS seq, hash FROM audit_head WHERE id = 1`)) as {
    seq: string;
    hash: string;
  }[];
  // A missing head claims an empty log: any event is then an insertion.
  const checker = new ChainChecker(
    head ? { seq: Number(head.seq), hash: head.hash } : { seq: 0, hash: GENESIS_HASH },
    options.knownHeads,
  );
  let after: string | null = null;
  for (;;) {
    // Keyset pages over the primary key: each batch is one index range, however far into the log.
    const rows = (after === null
      ? await query(chainBatch(`SELECT * FROM audit_event ORDER BY seq LIMIT $1`), [batchSize])
      : await query(chainBatch(`SELECT * FROM audit_event WHERE seq > $1 ORDER BY seq LIMIT $2`), [
          after,
          batchSize,
        ])) as unknown as StoredRow[];
    for (const row of rows) {
      const event = storedEvent(row);
      // Details with a number JavaScript reads as another hash as that other: changed, as a changed
      // event is.
      const intact = releaseIntact(row, event) && (row.details === null || exactJsonNumbers(row.details));
      if (!checker.push(event, intact)) return checker.finish();
    }
    if (rows.length < batchSize) break;
    after = rows[rows.length - 1].seq;
  }
  const verdict = checker.finish();
  if (!verdict.valid) return verdict;
  // Every event is intact: a release list that belongs to none was added.
  const [orphan] = (await query(ORPHAN_RELEASE_SQL)) as { seq: string | null }[];
  if (orphan?.seq) return { valid: false, checked: verdict.checked, firstBrokenSeq: Number(orphan.seq) };
  // The register's counts, which the events vouch for, are theirs: broken at the first event of a
  // bucket counted otherwise (past the log for a bucket of no event).
  const [register] = (await query(REGISTER_MISMATCH_SQL, [verdict.checked + 1])) as { seq: string | null }[];
  // The agreements' terms and states, which the events vouch for, are theirs (past the log for what
  // no event made).
  const [agreements] = (await query(AGREEMENT_MISMATCH_SQL, [verdict.checked + 1, IN_FORCE_REASON])) as {
    seq: string | null;
  }[];
  // The users and keys, which the events vouch for, are theirs (past the log for what no event made).
  const [accounts] = (await query(ACCOUNT_MISMATCH_SQL, [verdict.checked + 1])) as { seq: string | null }[];
  const broken = [register?.seq, agreements?.seq, accounts?.seq].filter((s): s is string => !!s).map(Number);
  if (!broken.length) return verdict;
  const seq = Math.min(...broken);
  return { valid: false, checked: Math.min(verdict.checked, seq - 1), firstBrokenSeq: seq };
}
