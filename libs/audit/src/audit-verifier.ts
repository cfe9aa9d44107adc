import {
  type ChainVerification,
  type ChainedAuditEvent,
  ChainChecker,
  GENESIS_HASH,
  type JsonValue,
  isoFromMicros,
} from './audit-chain';

/**
 * Runs one SQL statement and returns its rows. Verification needs all its statements to see one
 * snapshot: pass a function bound to one connection inside a REPEATABLE READ transaction.
 * Kept free of Nest and TypeORM so `scripts/audit-verify.ts` runs it on a bare pg client.
 */
export type SqlQuery = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

/** How many events verification reads per statement; memory stays bounded by it. */
export const VERIFY_BATCH_SIZE = 5000;

/**
 * SQL for the exact microseconds since the epoch of a timestamptz expression, as text. Appends and
 * verification both read timestamps through it, so the hashed `at` is the stored one to the
 * microsecond (`to_char` would round, and drop the era).
 */
export function microsSql(expression: string): string {
  return `CASE WHEN isfinite(${expression}) THEN (extract(epoch FROM ${expression}) * 1000000)::bigint::text END`;
}

// Everything is read as the text PostgreSQL stores, not through driver type parsers another part of
// the process could have changed. Statements order by `e.seq`: a bare `seq` would name this text.
const CHAIN_COLUMNS = `
  seq::text AS seq, ${microsSql('at')} AS at_micros,
  actor_user_id::text AS actor_user_id, actor_agency_id::text AS actor_agency_id,
  action, decision, reason, purpose, dataset_id::text AS dataset_id, agreement_id::text AS agreement_id,
  agreement_version, fields, row_count, details::text AS details, prev_hash, hash`;

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
 * recomputing every hash and link, and stops at the first break.
 *
 * @example
 * await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
 * const result = await verifyChain(async (sql, params) => (await client.query(sql, params)).rows);
 */
export async function verifyChain(
  query: SqlQuery,
  options: { batchSize?: number } = {},
): Promise<ChainVerification> {
  const batchSize = options.batchSize ?? VERIFY_BATCH_SIZE;
  const [head] = (await query(`SELECT seq::text AS seq, hash FROM audit_head WHERE id = 1`)) as {
    seq: string;
    hash: string;
  }[];
  // A missing head claims an empty log: any event is then an insertion.
  const checker = new ChainChecker(
    head ? { seq: Number(head.seq), hash: head.hash } : { seq: 0, hash: GENESIS_HASH },
  );
  let after: string | null = null;
  for (;;) {
    // Keyset pages over the primary key: each batch is one index range, however far into the log.
    const rows = (after === null
      ? await query(`SELECT ${CHAIN_COLUMNS} FROM audit_event e ORDER BY e.seq LIMIT $1`, [batchSize])
      : await query(`SELECT ${CHAIN_COLUMNS} FROM audit_event e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2`, [
          after,
          batchSize,
        ])) as unknown as StoredRow[];
    for (const row of rows) if (!checker.push(storedEvent(row))) return checker.finish();
    if (rows.length < batchSize) return checker.finish();
    after = rows[rows.length - 1].seq;
  }
}
