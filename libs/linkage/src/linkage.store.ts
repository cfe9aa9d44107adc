import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { Database } from '@broker/core';
import type { LinkagePhase } from '@broker/jobs';
import type { LinkageModel } from './core/model';
import type { LinkageTrigger } from './linkage-run.model';

/** A row of `linkage_run`. */
export interface LinkageRunRow {
  id: string;
  status: 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  trigger: LinkageTrigger;
  requested_by: string | null;
  phase: LinkagePhase | null;
  datasets: RunDataset[] | null;
  chunks: number | null;
  partitions: number | null;
  units_total: number | null;
  units_done: number;
  threshold: number | null;
  settings: RunSettings | null;
  /** The model the run learned (m and u of every comparison level), once estimated. */
  model: Pick<LinkageModel, 'm' | 'u'> | null;
  stats: RunStats | null;
  weight_histogram: { lower: number; upper: number; pairs: number }[] | null;
  error: string | null;
  previous_run_id: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

/** A dataset taking part in a run, as the run saw it at its start. */
export interface RunDataset {
  id: string;
  slug: string;
  keyField: string;
  keyType: string;
  fields: { name: string; type: string; identity: string }[];
}

/** The settings a run was started with. */
export interface RunSettings {
  chunkRecords: number;
  partitions: number;
  randomPairs: number;
  threshold: number;
}

/** A finished run's statistics (the contract's four, and more for operators). */
export interface RunStats {
  records: number;
  candidatePairs: number;
  links: number;
  persons: number;
  [more: string]: unknown;
}

/** A chunk of a run: a key range of one dataset. */
export interface ChunkRow {
  chunk: number;
  dataset_no: number;
  key_after: string | null;
  key_last: string | null;
}

/** An intermediate result of a run (see the migration): kind, two coordinates, bytes. */
export interface Blob {
  kind: BlobKind;
  a: number;
  b: number;
  data: Buffer;
}

/**
 * The kinds of intermediate result: a chunk's normalised records (`records`, a = chunk) and record
 * keys (`keys`), a chunk's records of one partition (`part`, a = chunk, b = partition), a
 * partition's links (`links`, b = partition), and the term frequencies (`tf`).
 */
export type BlobKind = 'records' | 'keys' | 'part' | 'links' | 'tf' | 'review';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BLOB_KINDS: ReadonlySet<string> = new Set<BlobKind>([
  'records',
  'keys',
  'part',
  'links',
  'tf',
  'review',
]);

/** PostgreSQL's binary COPY signature ("PGCOPY\n\xff\r\n\0"). */
const COPY_SIGNATURE = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

/** Rows (a int4, b int4, data bytea) of a binary COPY. */
function parseBinaryCopy(bytes: Buffer): { a: number; b: number; data: Buffer }[] {
  if (bytes.length < 19 || !bytes.subarray(0, 11).equals(COPY_SIGNATURE)) {
    throw new Error('not a binary COPY');
  }
  let offset = 11 + 4;
  offset += 4 + bytes.readUInt32BE(offset);
  const rows: { a: number; b: number; data: Buffer }[] = [];
  for (;;) {
    const fields = bytes.readInt16BE(offset);
    offset += 2;
    if (fields === -1) return rows;
    if (fields !== 3) throw new Error('unexpected binary COPY row');
    const a = bytes.readInt32BE(offset + 4);
    offset += 8;
    const b = bytes.readInt32BE(offset + 4);
    offset += 8;
    const length = bytes.readInt32BE(offset);
    offset += 4;
    rows.push({ a, b, data: bytes.subarray(offset, offset + length) });
    offset += length;
  }
}

const RUN_COLUMNS = `id, status, trigger, requested_by, phase, datasets, chunks, partitions, units_total,
  units_done, threshold, settings, model, stats, weight_histogram, error, previous_run_id, created_at,
  started_at, finished_at`;

/**
 * Every statement about linkage runs, through the broker's {@link Database} (the jobs stream bytes
 * and COPY, which TypeORM does not do).
 */
@Injectable()
export class LinkageStore {
  constructor(private readonly db: Database) {}

  /** Runs `work` in a transaction on one connection. */
  transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) => work(tx.client));
  }

  /** Runs one statement. */
  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.db.query<T>(sql, params);
  }

  /** Runs one statement, with rows as arrays (no object per row: chunks are read this way). */
  queryArrays(sql: string, params: unknown[] = []): Promise<unknown[][]> {
    return this.db.queryArrays(sql, params);
  }

  /**
   * A new QUEUED run, or the one already waiting (at most one waits: it will read every record,
   * including those that prompted this request).
   */
  async createRun(trigger: LinkageTrigger, requestedBy: string | null): Promise<LinkageRunRow> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const [created] = await this.query<LinkageRunRow>(
        `INSERT INTO linkage_run (trigger, requested_by) VALUES ($1, $2)
         ON CONFLICT ((true)) WHERE status = 'QUEUED' DO NOTHING RETURNING ${RUN_COLUMNS}`,
        [trigger, requestedBy],
      );
      if (created) return created;
      const [waiting] = await this.query<LinkageRunRow>(
        `SELECT ${RUN_COLUMNS} FROM linkage_run WHERE status = 'QUEUED'`,
      );
      // The waiting run may have started between the two statements: then insert again.
      if (waiting) return waiting;
    }
    throw new Error('could not create a linkage run');
  }

  async getRun(id: string, client?: PoolClient, lock = false): Promise<LinkageRunRow | null> {
    const sql = `SELECT ${RUN_COLUMNS} FROM linkage_run WHERE id = $1${lock ? ' FOR UPDATE' : ''}`;
    const rows = client
      ? ((await client.query(sql, [id])).rows as LinkageRunRow[])
      : await this.query<LinkageRunRow>(sql, [id]);
    return rows[0] ?? null;
  }

  /** Every run, newest first. */
  listRuns(): Promise<LinkageRunRow[]> {
    return this.query<LinkageRunRow>(
      `SELECT ${RUN_COLUMNS} FROM linkage_run ORDER BY created_at DESC, id DESC LIMIT 1000`,
    );
  }

  /** Runs that are not finished, oldest first. */
  async activeRunIds(): Promise<string[]> {
    const rows = await this.query<{ id: string }>(
      `SELECT id FROM linkage_run WHERE status IN ('QUEUED', 'RUNNING') ORDER BY created_at, id`,
    );
    return rows.map((r) => r.id);
  }

  async chunks(runId: string): Promise<ChunkRow[]> {
    return this.query<ChunkRow>(
      `SELECT chunk, dataset_no, key_after, key_last FROM linkage_chunk WHERE run_id = $1 ORDER BY chunk`,
      [runId],
    );
  }

  async unit(
    runId: string,
    phase: LinkagePhase,
    unit: number,
  ): Promise<{ done: boolean; attempts: number } | null> {
    const [row] = await this.query<{ done: boolean; attempts: number }>(
      `SELECT done_at IS NOT NULL AS done, attempts FROM linkage_unit WHERE run_id = $1 AND phase = $2 AND unit = $3`,
      [runId, phase, unit],
    );
    return row ?? null;
  }

  /** Counts an attempt at a unit (so a test, or an operator, can see that a unit was redone). */
  async countAttempt(runId: string, phase: LinkagePhase, unit: number): Promise<void> {
    await this.query(
      `UPDATE linkage_unit SET attempts = attempts + 1 WHERE run_id = $1 AND phase = $2 AND unit = $3`,
      [runId, phase, unit],
    );
  }

  /**
   * Commits a unit's results and marks it done, in one transaction, unless it is done already (a
   * worker that was presumed dead finished it) or its run is no longer running. Returns whether it
   * committed. `stats` is serialised after `write`, which may fill it in.
   */
  async commitUnit(
    runId: string,
    phase: LinkagePhase,
    unit: number,
    stats: Record<string, unknown>,
    write: (client: PoolClient) => Promise<void>,
  ): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ done: boolean; status: string }>(
        `SELECT u.done_at IS NOT NULL AS done, r.status FROM linkage_unit u JOIN linkage_run r ON r.id = u.run_id
          WHERE u.run_id = $1 AND u.phase = $2 AND u.unit = $3 FOR UPDATE OF u`,
        [runId, phase, unit],
      );
      if (!rows[0] || rows[0].done || rows[0].status !== 'RUNNING') return false;
      await write(client);
      await client.query(
        `UPDATE linkage_unit SET done_at = clock_timestamp(), stats = $4 WHERE run_id = $1 AND phase = $2 AND unit = $3`,
        [runId, phase, unit, JSON.stringify(stats)],
      );
      await client.query(
        `UPDATE linkage_run SET units_done = units_done + 1, updated_at = clock_timestamp() WHERE id = $1`,
        [runId],
      );
      return true;
    });
  }

  /** Units of a phase that are not done yet. */
  async pendingUnits(client: PoolClient, runId: string, phase: LinkagePhase): Promise<number[]> {
    const { rows } = await client.query<{ unit: number }>(
      `SELECT unit FROM linkage_unit WHERE run_id = $1 AND phase = $2 AND done_at IS NULL ORDER BY unit`,
      [runId, phase],
    );
    return rows.map((r) => r.unit);
  }

  /** Creates the units of a phase (idempotent). */
  async createUnits(client: PoolClient, runId: string, phase: LinkagePhase, count: number): Promise<void> {
    await client.query(
      `INSERT INTO linkage_unit (run_id, phase, unit) SELECT $1, $2, u FROM generate_series(0, $3 - 1) u
       ON CONFLICT DO NOTHING`,
      [runId, phase, count],
    );
  }

  /** The statistics of a phase's done units, by unit. */
  async unitStats<T>(client: PoolClient, runId: string, phase: LinkagePhase): Promise<T[]> {
    const { rows } = await client.query<{ stats: T }>(
      `SELECT stats FROM linkage_unit WHERE run_id = $1 AND phase = $2 AND done_at IS NOT NULL ORDER BY unit`,
      [runId, phase],
    );
    return rows.map((r) => r.stats);
  }

  /**
   * Writes blobs (replacing any with the same coordinates). The bytes go as binary parameters
   * (node-postgres sends a Buffer in binary format), a few statements of many rows each.
   */
  async putBlobs(client: PoolClient, runId: string, blobs: Blob[]): Promise<void> {
    let batch: Blob[] = [];
    let bytes = 0;
    const flush = async () => {
      if (!batch.length) return;
      const params: unknown[] = [runId];
      const rows = batch.map(
        (blob) =>
          `($1, $${params.push(blob.kind)}, $${params.push(blob.a)}, $${params.push(blob.b)}, $${params.push(blob.data)}::bytea)`,
      );
      await client.query(
        `INSERT INTO linkage_blob (run_id, kind, a, b, data) VALUES ${rows.join(', ')}
         ON CONFLICT (run_id, kind, a, b) DO UPDATE SET data = excluded.data`,
        params,
      );
      batch = [];
      bytes = 0;
    };
    for (const blob of blobs) {
      batch.push(blob);
      bytes += blob.data.length;
      if (bytes >= 32 * 1024 * 1024 || batch.length >= 1000) await flush();
    }
    await flush();
  }

  /**
   * Blobs of a kind, optionally at one `a` or one `b`, ordered by (a, b). Read with COPY in binary
   * format: the bytes arrive as they are stored, where a query's result would carry them as hex
   * text twice their size (node-postgres's binary result mode decodes every field as UTF-8, which
   * corrupts bytes).
   */
  async getBlobs(
    runId: string,
    kind: BlobKind,
    where: { a?: number; b?: number } = {},
  ): Promise<{ a: number; b: number; data: Buffer }[]> {
    // COPY takes no parameters: every value is checked before it is written into the statement.
    if (!UUID.test(runId)) throw new Error('not a run id');
    if (!BLOB_KINDS.has(kind)) throw new Error('not a blob kind');
    const conditions = [`run_id = '${runId}'`, `kind = '${kind}'`];
    for (const [column, value] of [
      ['a', where.a],
      ['b', where.b],
    ] as const) {
      if (value === undefined) continue;
      if (!Number.isInteger(value)) throw new Error(`blob ${column} must be an integer`);
      conditions.push(`${column} = ${value}`);
    }
    return this.db.connection(async (client) => {
      const stream = client.query(
        copyTo(
          `COPY (SELECT a, b, data FROM linkage_blob WHERE ${conditions.join(' AND ')} ORDER BY a, b)
             TO STDOUT WITH (FORMAT binary)`,
        ),
      );
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return parseBinaryCopy(Buffer.concat(chunks));
    });
  }

  /** Deletes a run's intermediate results. */
  async deleteBlobs(runId: string): Promise<void> {
    await this.query(`DELETE FROM linkage_blob WHERE run_id = $1`, [runId]);
  }
}

/** SQL that reads an identity field as text (dates as YYYY-MM-DD). */
export function identityText(column: string, type: string): string {
  switch (type) {
    case 'DATE':
      return `to_char(${column}, 'YYYY-MM-DD')`;
    case 'DATETIME':
      return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;
    default:
      return `${column}::text`;
  }
}
