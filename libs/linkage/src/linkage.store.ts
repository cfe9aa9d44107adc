import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { Database, isCanonicalUuid, quoteIdent } from '@broker/core';
import { type FieldType, RECORDS_SCHEMA, columnTypeOf } from '@broker/registry';
import { LINKAGE_CHUNKS_LOCK, type LinkagePhase } from '@broker/jobs';
import type { LinkageModel } from './core/model';
import type { LinkageRunStatus } from './linkage-run.machine';
import type { LinkageTrigger } from './linkage-run.model';

/** A row of `linkage_run`. */
export interface LinkageRunRow {
  id: string;
  status: LinkageRunStatus;
  trigger: LinkageTrigger;
  requested_by: string | null;
  phase: LinkagePhase | null;
  datasets: RunDataset[] | null;
  chunks: number | null;
  partitions: number | null;
  units_total: number | null;
  units_done: number;
  /**
   * Times the run went back to its estimate phase: a retention batch destroyed records its model
   * had learned from (see LinkageRecordsDestroyed).
   */
  restarts: number;
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

/**
 * A chunk of a run: a key range of one dataset, after `key_after` (null: from the first key) up to
 * `key_last` included (null: to the last), or `empty` (retention destroyed the records that bounded
 * it, and every record below them: it holds none, and names no key). Kept while the run works only:
 * finishing it deletes its chunks (see {@link LinkageStore.markSucceeded}).
 */
export interface ChunkRow {
  chunk: number;
  dataset_no: number;
  key_after: string | null;
  key_last: string | null;
  empty: boolean;
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
  units_done, restarts, threshold, settings, model, stats, weight_histogram, error, previous_run_id, created_at,
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
   * including those that prompted this request). On `client` (in its transaction) when given: a
   * retention batch requests its run so, committed with the destruction that prompted it.
   */
  async createRun(
    trigger: LinkageTrigger,
    requestedBy: string | null,
    client?: PoolClient,
  ): Promise<LinkageRunRow> {
    const query = async (sql: string, params: unknown[] = []) =>
      client
        ? ((await client.query(sql, params)).rows as LinkageRunRow[])
        : this.query<LinkageRunRow>(sql, params);
    for (let attempt = 0; attempt < 5; attempt++) {
      const [created] = await query(
        `INSERT INTO linkage_run (trigger, requested_by) VALUES ($1, $2)
         ON CONFLICT ((true)) WHERE status = 'QUEUED' DO NOTHING RETURNING ${RUN_COLUMNS}`,
        [trigger, requestedBy],
      );
      if (created) return created;
      const [waiting] = await query(`SELECT ${RUN_COLUMNS} FROM linkage_run WHERE status = 'QUEUED'`);
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
      `SELECT chunk, dataset_no, key_after, key_last, empty FROM linkage_chunk WHERE run_id = $1 ORDER BY chunk`,
      [runId],
    );
  }

  async unit(
    runId: string,
    phase: LinkagePhase,
    unit: number,
  ): Promise<{ phase: LinkagePhase; done: boolean; attempts: number } | null> {
    const [row] = await this.query<{ phase: LinkagePhase; done: boolean; attempts: number }>(
      `SELECT phase, done_at IS NOT NULL AS done, attempts FROM linkage_unit
        WHERE run_id = $1 AND phase = $2 AND unit = $3`,
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
   * worker that was presumed dead finished it), its run is no longer running, or its run is in
   * another phase (it went back to its estimate phase: see LinkageRecordsDestroyed). Returns whether
   * it committed. `stats` is serialised after `write`, which may fill it in.
   *
   * First takes `LINKAGE_CHUNKS_LOCK` shared (see {@link lockDerived}); then, when a retention batch
   * destroyed records of the run since the unit read `seen` (the run's {@link destructions}, read
   * before its inputs), throws {@link StaleUnitError} instead: what the unit computed may hold
   * records that are gone, and it is done again from what retention left.
   */
  async commitUnit(
    runId: string,
    phase: LinkagePhase,
    unit: number,
    seen: number,
    stats: Record<string, unknown>,
    write: (client: PoolClient) => Promise<void>,
  ): Promise<boolean> {
    return this.transaction(async (client) => {
      await this.lockDerived(client);
      const { rows } = await client.query<{ done: boolean; status: string; phase: string | null }>(
        `SELECT u.done_at IS NOT NULL AS done, r.status, r.phase FROM linkage_unit u JOIN linkage_run r ON r.id = u.run_id
          WHERE u.run_id = $1 AND u.phase = $2 AND u.unit = $3 FOR UPDATE OF u`,
        [runId, phase, unit],
      );
      const found = rows[0];
      if (!found || found.done || found.status !== 'RUNNING' || found.phase !== phase) return false;
      if ((await this.destructions(runId, client)) !== seen) throw new StaleUnitError(runId, phase, unit);
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

  /**
   * How many retention batches destroyed records of the run's datasets while it worked (the sum of
   * its chunks' counts; 0 before it has chunks): a unit reads it before its inputs.
   */
  async destructions(runId: string, client?: PoolClient): Promise<number> {
    const [{ n }] = await this.rowsOn<{ n: number }>(
      client,
      `SELECT coalesce(sum(destructions), 0)::int AS n FROM linkage_chunk WHERE run_id = $1`,
      [runId],
    );
    return n;
  }

  /** Takes `LINKAGE_CHUNKS_LOCK` shared until the caller's transaction ends: see {@link lockDerived}. */
  async lockDerived(client: Pick<PoolClient, 'query'>): Promise<void> {
    await lockDerived((sql, params) => client.query(sql, params));
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
    if (!isCanonicalUuid(runId)) throw new Error('not a run id');
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

  // The run's lifecycle (see linkage-run.machine.ts for the transitions these make).

  /** Whether a run is RUNNING (another than a QUEUED one asking). */
  async anyRunRunning(client: PoolClient): Promise<boolean> {
    const { rows } = await client.query(`SELECT 1 FROM linkage_run WHERE status = 'RUNNING' LIMIT 1`);
    return rows.length > 0;
  }

  /** QUEUED → RUNNING in the prepare phase; the run in force becomes the one it supersedes. */
  async markStarted(client: PoolClient, runId: string): Promise<void> {
    await client.query(
      `UPDATE linkage_run SET status = 'RUNNING', phase = 'prepare', started_at = clock_timestamp(),
         updated_at = clock_timestamp(), previous_run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1)
       WHERE id = $1 AND status = 'QUEUED'`,
      [runId],
    );
  }

  /** A RUNNING run enters its next phase. */
  async setPhase(client: PoolClient, runId: string, phase: LinkagePhase): Promise<void> {
    await client.query(
      `UPDATE linkage_run SET phase = $2, updated_at = clock_timestamp() WHERE id = $1 AND status = 'RUNNING'`,
      [runId, phase],
    );
  }

  /**
   * RUNNING → SUCCEEDED, with its statistics and weight histogram; its chunks go in the same
   * transaction (their bounds are record keys, which a finished run needs no more).
   */
  async markSucceeded(
    client: PoolClient,
    runId: string,
    stats: RunStats,
    histogram: unknown[],
  ): Promise<void> {
    await client.query(
      `UPDATE linkage_run SET status = 'SUCCEEDED', phase = NULL, finished_at = clock_timestamp(),
         updated_at = clock_timestamp(), units_done = units_total, stats = $2, weight_histogram = $3
       WHERE id = $1 AND status = 'RUNNING'`,
      [runId, JSON.stringify(stats), JSON.stringify(histogram)],
    );
    await this.deleteChunks(client, runId);
  }

  /** QUEUED or RUNNING → FAILED, with the error; its chunks go in the same transaction. */
  async markFailed(client: PoolClient, runId: string, error: string): Promise<void> {
    await client.query(
      `UPDATE linkage_run SET status = 'FAILED', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
         error = $2 WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')`,
      [runId, error],
    );
    await this.deleteChunks(client, runId);
  }

  /** Deletes a finished run's chunks, in the transaction that finishes it. */
  private async deleteChunks(client: PoolClient, runId: string): Promise<void> {
    await client.query(`DELETE FROM linkage_chunk WHERE run_id = $1`, [runId]);
  }

  /** Puts a run in force: the data plane reads its persons from this moment (of commit) on. */
  async makeCurrent(client: PoolClient, runId: string): Promise<void> {
    await client.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [runId]);
  }

  /** The oldest QUEUED run, the next to start. */
  async nextQueuedRunId(): Promise<string | null> {
    const [next] = await this.query<{ id: string }>(
      `SELECT id FROM linkage_run WHERE status = 'QUEUED' ORDER BY created_at, id LIMIT 1`,
    );
    return next?.id ?? null;
  }

  // Cleaning up after runs.

  /**
   * Deletes the persons of every finished run that is not in force (the run a new one superseded,
   * and any failed run's): returns how many rows went.
   */
  async deleteSupersededPersons(client: PoolClient): Promise<number> {
    const result = await client.query(
      `DELETE FROM linkage_person p USING linkage_run r
        WHERE p.run_id = r.id AND r.status IN ('SUCCEEDED', 'FAILED')
          AND r.id IS DISTINCT FROM (SELECT current_run_id FROM linkage_state WHERE id = 1)`,
    );
    return result.rowCount ?? 0;
  }

  /**
   * Refreshes the planner's statistics of the persons table (the data plane joins it for personKey,
   * linked counts and persons), in the caller's transaction: rows it wrote or deleted count as
   * they will once it commits.
   */
  async analyzePersons(client: PoolClient): Promise<void> {
    await client.query(`ANALYZE linkage_person`);
  }

  /**
   * Finished runs that left something behind: intermediate results, or persons or personKey lookup
   * tables while not in force (their worker died between finishing the run and cleaning up after it).
   */
  async finishedRunsWithLeftovers(): Promise<string[]> {
    const rows = await this.query<{ id: string }>(
      `SELECT r.id FROM linkage_run r
        WHERE r.status IN ('SUCCEEDED', 'FAILED')
          AND (EXISTS (SELECT 1 FROM linkage_blob b WHERE b.run_id = r.id)
               OR ((EXISTS (SELECT 1 FROM linkage_person p WHERE p.run_id = r.id)
                    OR EXISTS (SELECT 1 FROM person_key_scope k WHERE k.run_id = r.id))
                   AND r.id IS DISTINCT FROM (SELECT current_run_id FROM linkage_state WHERE id = 1)))
        ORDER BY r.created_at, r.id`,
    );
    return rows.map((r) => r.id);
  }

  // The prepare phase.

  /** Every dataset with identity fields, its key and identity fields, in registration order. */
  linkableDatasets(): Promise<RunDataset[]> {
    return this.query<RunDataset>(
      `SELECT d.id, d.slug, d.key_field AS "keyField", k.type AS "keyType",
              json_agg(json_build_object('name', f.name, 'type', f.type, 'identity', f.identity) ORDER BY f.position)
                AS fields
         FROM dataset d
         JOIN dataset_field f ON f.dataset_id = d.id AND f.identity IS NOT NULL
         JOIN dataset_field k ON k.dataset_id = d.id AND k.name = d.key_field
        GROUP BY d.id, k.type
        ORDER BY d.created_at, d.id`,
    );
  }

  /** How many records a dataset holds (on `client`, when given). */
  async countRecords(dataset: RunDataset, client?: PoolClient): Promise<number> {
    const [{ n }] = await this.rowsOn<{ n: number }>(
      client,
      `SELECT count(*)::int AS n FROM ${recordsTable(dataset)}`,
    );
    return n;
  }

  /** Every `size`-th record key of a dataset, in key order (each ends a chunk; on `client`, when given). */
  async chunkEnds(dataset: RunDataset, size: number, client?: PoolClient): Promise<string[]> {
    const key = quoteIdent(dataset.keyField);
    const rows = await this.rowsOn<{ k: string }>(
      client,
      `SELECT k FROM (SELECT ${key}::text AS k, row_number() OVER (ORDER BY ${key}) AS rn FROM ${recordsTable(dataset)}) s
        WHERE rn % $1 = 0 ORDER BY rn`,
      [size],
    );
    return rows.map((r) => r.k);
  }

  /** Runs one statement on `client`, or on a connection of the pool. */
  private async rowsOn<T>(client: PoolClient | undefined, sql: string, params: unknown[] = []): Promise<T[]> {
    return client ? ((await client.query(sql, params)).rows as T[]) : this.query<T>(sql, params);
  }

  /** Replaces a run's chunks (numbered in the order given). */
  async replaceChunks(
    client: PoolClient,
    runId: string,
    chunks: readonly Omit<ChunkRow, 'chunk' | 'empty'>[],
  ): Promise<void> {
    await client.query(`DELETE FROM linkage_chunk WHERE run_id = $1`, [runId]);
    await client.query(
      `INSERT INTO linkage_chunk (run_id, chunk, dataset_no, key_after, key_last)
       SELECT $1, c - 1, d, a, l FROM unnest($2::int[], $3::text[], $4::text[]) WITH ORDINALITY AS t(d, a, l, c)`,
      [runId, chunks.map((c) => c.dataset_no), chunks.map((c) => c.key_after), chunks.map((c) => c.key_last)],
    );
  }

  /** Records how a run was cut up: its datasets, chunks, partitions and settings, and its units. */
  async recordPlan(
    client: PoolClient,
    runId: string,
    plan: {
      datasets: RunDataset[];
      chunks: number;
      partitions: number;
      settings: RunSettings;
      unitsTotal: number;
    },
  ): Promise<void> {
    await client.query(
      `UPDATE linkage_run SET datasets = $2, chunks = $3, partitions = $4, settings = $5, threshold = $6,
         units_total = $7 WHERE id = $1`,
      [
        runId,
        JSON.stringify(plan.datasets),
        plan.chunks,
        plan.partitions,
        JSON.stringify(plan.settings),
        plan.settings.threshold,
        plan.unitsTotal,
      ],
    );
  }

  // The normalise phase.

  /** One chunk of a run. */
  async chunk(runId: string, chunk: number): Promise<ChunkRow | null> {
    const [row] = await this.query<ChunkRow>(
      `SELECT chunk, dataset_no, key_after, key_last, empty FROM linkage_chunk WHERE run_id = $1 AND chunk = $2`,
      [runId, chunk],
    );
    return row ?? null;
  }

  /**
   * A key range of a dataset's records, in key order, as arrays: the key, then each identity field
   * as text (dates as YYYY-MM-DD), in the order of `dataset.fields`.
   */
  async chunkRecords(
    dataset: RunDataset,
    after: string | null,
    last: string | null,
  ): Promise<(string | null)[][]> {
    const key = quoteIdent(dataset.keyField);
    const keyType = columnTypeOf(dataset.keyType as FieldType);
    const columns = dataset.fields.map((f) => identityText(quoteIdent(f.name), f.type));
    const params: unknown[] = [];
    const conditions: string[] = [];
    if (after !== null) conditions.push(`${key} > $${params.push(after)}::${keyType}`);
    if (last !== null) conditions.push(`${key} <= $${params.push(last)}::${keyType}`);
    return (await this.queryArrays(
      `SELECT ${key}::text, ${columns.join(', ')} FROM ${recordsTable(dataset)}
        ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${key}`,
      params,
    )) as (string | null)[][];
  }

  /** Replaces a chunk's intermediate results (its records, keys and partition batches). */
  async replaceChunkBlobs(client: PoolClient, runId: string, chunk: number, blobs: Blob[]): Promise<void> {
    await client.query(
      `DELETE FROM linkage_blob WHERE run_id = $1 AND kind IN ('records', 'keys', 'part') AND a = $2`,
      [runId, chunk],
    );
    await this.putBlobs(client, runId, blobs);
  }

  // Retention: records a run under way read are destroyed (see linkage-records-destroyed.ts).

  /** The runs under way that read a dataset, with its number in each (on the batch's `client`). */
  async runsReading(client: PoolClient, datasetId: string): Promise<{ id: string; dataset_no: number }[]> {
    const { rows } = await client.query<{ id: string; dataset_no: number }>(
      `SELECT r.id, (o.n - 1)::int AS dataset_no
         FROM linkage_run r CROSS JOIN LATERAL jsonb_array_elements(r.datasets) WITH ORDINALITY AS o (d, n)
        WHERE r.status = 'RUNNING' AND o.d ->> 'id' = $1 ORDER BY r.id`,
      [datasetId],
    );
    return rows;
  }

  /** The normalised chunks of dataset number `datasetNo` of a run holding any of `keys`, with their keys. */
  async chunksHolding(
    client: PoolClient,
    runId: string,
    datasetNo: number,
    keys: readonly string[],
  ): Promise<{ chunk: number; keys: string[] }[]> {
    const { rows } = await client.query<{ chunk: number; keys: string }>(
      `SELECT b.a AS chunk, convert_from(b.data, 'UTF8') AS keys
         FROM linkage_blob b JOIN linkage_chunk c ON c.run_id = b.run_id AND c.chunk = b.a
        WHERE b.run_id = $1 AND b.kind = 'keys' AND c.dataset_no = $2
          AND convert_from(b.data, 'UTF8')::jsonb ?| $3::text[]
        ORDER BY b.a`,
      [runId, datasetNo, keys],
    );
    return rows.map((r) => ({ chunk: r.chunk, keys: JSON.parse(r.keys) as string[] }));
  }

  /** A run's blobs of `kinds` (of chunks `chunks` only, when given), in the caller's transaction. */
  async blobsOn(
    client: PoolClient,
    runId: string,
    kinds: readonly BlobKind[],
    chunks: readonly number[] | null = null,
  ): Promise<Blob[]> {
    const { rows } = await client.query<Blob>(
      `SELECT kind, a, b, data FROM linkage_blob
        WHERE run_id = $1 AND kind = ANY ($2::text[]) AND ($3::int[] IS NULL OR a = ANY ($3::int[]))
        ORDER BY kind, a, b`,
      [runId, kinds, chunks],
    );
    return rows;
  }

  /** Whether a run's estimate unit is done: its model learned from the records normalised then. */
  async estimateDone(client: PoolClient, runId: string): Promise<boolean> {
    const { rows } = await client.query(
      `SELECT 1 FROM linkage_unit WHERE run_id = $1 AND phase = 'estimate' AND done_at IS NOT NULL`,
      [runId],
    );
    return rows.length > 0;
  }

  /**
   * A RUNNING run goes back to phase `to` (its estimate phase), in a retention batch's transaction:
   * the units of `phases` (that one and after) are pending again (their attempts kept), the run's
   * units done count them no more, its model is dropped, and whatever those units wrote goes (term
   * frequencies, links and pairs for review of the partitions scored, the persons and pairs for
   * review of the cluster unit). Counts the restart. Resolves to the phase it was in and its restarts
   * now, or null when it is not RUNNING.
   */
  async backTo(
    client: PoolClient,
    runId: string,
    to: LinkagePhase,
    phases: readonly LinkagePhase[],
  ): Promise<{ from: LinkagePhase; restarts: number } | null> {
    const { rows: locked } = await client.query<{ phase: LinkagePhase }>(
      `SELECT phase FROM linkage_run WHERE id = $1 AND status = 'RUNNING' FOR UPDATE`,
      [runId],
    );
    if (!locked[0]) return null;
    const redone = await client.query(
      `UPDATE linkage_unit SET done_at = NULL, stats = NULL
        WHERE run_id = $1 AND phase = ANY ($2::text[]) AND done_at IS NOT NULL`,
      [runId, phases],
    );
    const { rows } = await client.query<{ restarts: number }>(
      `UPDATE linkage_run SET phase = $2, model = NULL, restarts = restarts + 1, units_done = units_done - $3,
         updated_at = clock_timestamp() WHERE id = $1 AND status = 'RUNNING' RETURNING restarts`,
      [runId, to, redone.rowCount ?? 0],
    );
    await client.query(`DELETE FROM linkage_blob WHERE run_id = $1 AND kind = ANY ($2::text[])`, [
      runId,
      ['tf', 'links', 'review'] satisfies BlobKind[],
    ]);
    await client.query(`DELETE FROM linkage_person WHERE run_id = $1`, [runId]);
    await client.query(`DELETE FROM linkage_review_pair WHERE run_id = $1`, [runId]);
    return { from: locked[0].phase, restarts: rows[0].restarts };
  }

  /** Sets the records a normalise unit counted (its chunk lost some to retention). */
  async setChunkRecords(client: PoolClient, runId: string, chunk: number, records: number): Promise<void> {
    await client.query(
      `UPDATE linkage_unit SET stats = jsonb_set(stats, '{records}', to_jsonb($3::int))
        WHERE run_id = $1 AND phase = 'normalise' AND unit = $2 AND stats IS NOT NULL`,
      [runId, chunk, records],
    );
  }

  // The estimate phase.

  /** Stores the model a run learned. */
  async saveModel(client: PoolClient, runId: string, model: LinkageModel): Promise<void> {
    await client.query(`UPDATE linkage_run SET model = $2 WHERE id = $1`, [runId, JSON.stringify(model)]);
  }

  /** The model a run learned; throws when it has none yet. */
  async model(runId: string): Promise<LinkageModel> {
    const [row] = await this.query<{ model: LinkageModel | null }>(
      `SELECT model FROM linkage_run WHERE id = $1`,
      [runId],
    );
    if (!row?.model) throw new Error(`linkage run ${runId} has no model`);
    return row.model;
  }

  // The cluster phase.

  /** A run's person per record. */
  personsOf(runId: string): Promise<{ dataset_id: string; record_key: string; person_id: string }[]> {
    return this.query(`SELECT dataset_id, record_key, person_id FROM linkage_person WHERE run_id = $1`, [
      runId,
    ]);
  }

  /** Every reviewer's decision on a pair of records (the latest stands: one row per pair). */
  decisions(): Promise<DecisionRow[]> {
    return this.query<DecisionRow>(
      `SELECT dataset_a, key_a, dataset_b, key_b, same FROM linkage_decision
        ORDER BY dataset_a, key_a, dataset_b, key_b`,
    );
  }

  /** The next new person id, locked until the caller's transaction ends (one run assigns at a time). */
  async lockNextPersonId(client: PoolClient): Promise<number> {
    const { rows } = await client.query<{ next: string }>(
      `SELECT next_person_id AS next FROM linkage_state WHERE id = 1 FOR UPDATE`,
    );
    return Number(rows[0].next);
  }

  /** Sets the next new person id. */
  async setNextPersonId(client: PoolClient, next: number): Promise<void> {
    await client.query(`UPDATE linkage_state SET next_person_id = $1 WHERE id = 1`, [next]);
  }

  /**
   * Replaces a run's persons with `rows` ([dataset id, record key, person id]), written with COPY
   * in pieces of about a megabyte.
   */
  async replacePersons(
    client: PoolClient,
    runId: string,
    rows: Iterable<readonly [string, string, number]>,
  ): Promise<void> {
    await client.query(`DELETE FROM linkage_person WHERE run_id = $1`, [runId]);
    const copy = client.query(
      copyFrom(`COPY linkage_person (run_id, dataset_id, record_key, person_id) FROM STDIN`),
    );
    let text = '';
    const flush = async () => {
      if (!copy.write(text)) await once(copy, 'drain');
      text = '';
    };
    for (const [datasetId, key, person] of rows) {
      text += `${runId}\t${datasetId}\t${copyText(key)}\t${person}\n`;
      if (text.length >= 1 << 20) await flush();
    }
    if (text) await flush();
    copy.end();
    await finished(copy);
  }

  /**
   * Deletes the run's persons and pairs for review that name a record no longer there, in the
   * cluster unit's commit (which holds `LINKAGE_CHUNKS_LOCK` shared): a guard, since retention
   * removes the records it destroys from a running run's normalised data and the commit is refused
   * when it did so after the unit read it. Resolves to the rows deleted (none, but for a fault).
   */
  async deleteWithoutRecord(
    client: PoolClient,
    runId: string,
    datasets: readonly RunDataset[],
  ): Promise<number> {
    let deleted = 0;
    for (const dataset of datasets) {
      const gone = (column: string) =>
        `NOT EXISTS (SELECT 1 FROM ${recordsTable(dataset)} t
                      WHERE t.${quoteIdent(dataset.keyField)} = ${column}::${columnTypeOf(dataset.keyType as FieldType)})`;
      const persons = await client.query(
        `DELETE FROM linkage_person p WHERE p.run_id = $1 AND p.dataset_id = $2 AND ${gone('p.record_key')}`,
        [runId, dataset.id],
      );
      const pairs = await client.query(
        `DELETE FROM linkage_review_pair r WHERE r.run_id = $1
            AND ((r.dataset_a = $2 AND ${gone('r.key_a')}) OR (r.dataset_b = $2 AND ${gone('r.key_b')}))`,
        [runId, dataset.id],
      );
      deleted += (persons.rowCount ?? 0) + (pairs.rowCount ?? 0);
    }
    return deleted;
  }

  /** Replaces a run's pairs kept for review. */
  async replaceReviewPairs(
    client: PoolClient,
    runId: string,
    pairs: readonly ReviewPairRow[],
  ): Promise<void> {
    await client.query(`DELETE FROM linkage_review_pair WHERE run_id = $1`, [runId]);
    if (!pairs.length) return;
    await client.query(
      `INSERT INTO linkage_review_pair (run_id, pair, dataset_a, key_a, dataset_b, key_b, levels, weight)
       SELECT $1, p.pair, p.dataset_a, p.key_a, p.dataset_b, p.key_b, p.levels, p.weight
         FROM jsonb_to_recordset($2::jsonb) AS p(pair int, dataset_a uuid, key_a text, dataset_b uuid,
              key_b text, levels jsonb, weight double precision)`,
      [runId, JSON.stringify(pairs)],
    );
  }
}

/**
 * A unit's results are not committed: a retention batch destroyed records of its run after the unit
 * read its inputs (see {@link LinkageStore.commitUnit}). The unit is done again.
 */
export class StaleUnitError extends Error {
  constructor(runId: string, phase: LinkagePhase, unit: number) {
    super(`linkage run ${runId}: ${phase} unit ${unit} read records that retention destroyed since`);
    this.name = 'StaleUnitError';
  }
}

/** A reviewer's decision on a pair of records. */
export interface DecisionRow {
  dataset_a: string;
  key_a: string;
  dataset_b: string;
  key_b: string;
  same: boolean;
}

/** A pair kept for review, named by its records, with its comparison levels and weight. */
export interface ReviewPairRow {
  pair: number;
  dataset_a: string;
  key_a: string;
  dataset_b: string;
  key_b: string;
  levels: number[];
  weight: number;
}

/**
 * Takes `LINKAGE_CHUNKS_LOCK` shared until the caller's transaction ends, as every linkage
 * transaction that writes data derived from records does, before anything else it locks: a
 * retention batch, which takes it exclusive after its DELETE and before it removes what linkage
 * derived from the records, then either finds what this transaction wrote (it committed first) or
 * has committed before this reads anything.
 */
export async function lockDerived(
  query: (sql: string, params: unknown[]) => Promise<unknown>,
): Promise<void> {
  await query(`SELECT pg_advisory_xact_lock_shared($1)`, [LINKAGE_CHUNKS_LOCK]);
}

/** The records table of a dataset. */
function recordsTable(dataset: Pick<RunDataset, 'slug'>): string {
  return `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(dataset.slug)}`;
}

/** A value in COPY's text format. */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : value;
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
