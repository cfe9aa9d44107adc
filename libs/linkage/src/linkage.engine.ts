import { Inject, Injectable } from '@nestjs/common';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { AuditAction, AuditService } from '@broker/audit';
import { LOGGER, quoteIdent } from '@broker/core';
import type { LinkagePhase, LinkageUnitJob } from '@broker/jobs';
import { type FieldType, RECORDS_SCHEMA, columnTypeOf } from '@broker/registry';
import { BLOCKING_RULES } from './core/blocking';
import { assignPersonIds } from './core/clustering';
import {
  IDENTITY_PROPERTY,
  IDENTITY_ROLES,
  type IdentityRoleName,
  emptyIdentityValues,
  emptyUnparsedCounts,
} from './core/identity-fields';
import type { LinkageModel, TermFrequencies } from './core/model';
import type { IdentityValues, UnparsedCounts } from './core/normalise';
import { decodePattern } from './core/comparisons';
import {
  DEFAULT_SETTINGS,
  MAX_CHUNKS,
  MAX_CHUNK_RECORDS,
  clusterLinks,
  fitModel,
  normaliseChunk,
  partitionsFor,
  recordIdOf,
  termFrequenciesFromJson,
  termFrequenciesToJson,
} from './core/pipeline';
import { RecordBatch } from './core/record-batch';
import {
  HISTOGRAM_MIN,
  type Links,
  PartitionScorer,
  type ReviewPair,
  deserialiseLinks,
  nearestFirst,
  serialiseLinks,
} from './core/scorer';
import { LINKAGE_CONFIG, type LinkageConfig, thresholdWeight } from './linkage-config';
import { LinkageQueue } from './linkage.queue';
import {
  type Blob,
  type LinkageRunRow,
  LinkageStore,
  type ChunkRow,
  type RunDataset,
  type RunSettings,
  type RunStats,
  identityText,
} from './linkage.store';

/** Pairs kept for review per run, the nearest the threshold. */
export const REVIEW_PAIRS = 100;
/** The weight of a link a reviewer decided: above any the model gives. */
const DECIDED_WEIGHT = 1000;

/** The phases in order, and how many units each has once the run is prepared. */
const PHASES: readonly LinkagePhase[] = ['prepare', 'normalise', 'estimate', 'score', 'cluster'];

/** What a score unit records. */
interface ScoreStats {
  pairs: number;
  links: number;
  /** Sparse histogram: bin index (weight floor − HISTOGRAM_MIN) → pairs. */
  histogram: Record<string, number>;
  skippedBlocks: number;
  pairsByRule: number[];
  records: number;
  cpuMs: number;
}

/**
 * Executes linkage runs, unit by unit, in the worker. A run is a sequence of phases (see
 * `core/pipeline.ts`); each unit reads its inputs from PostgreSQL, computes, and commits its
 * results together with its "done" mark, so a unit killed half-way is simply done again by the
 * next worker that takes its (stalled) job, and a unit done twice commits once. The run's state is
 * in PostgreSQL; BullMQ only says what to look at next, and {@link advance} re-derives what is
 * pending from the database, so lost jobs are re-created by the watchdog.
 */
@Injectable()
export class LinkageEngine {
  private cachedFit: { runId: string; model: LinkageModel; tf: TermFrequencies } | null = null;

  constructor(
    private readonly store: LinkageStore,
    private readonly queue: LinkageQueue,
    private readonly audit: AuditService,
    @Inject(LINKAGE_CONFIG) private readonly config: LinkageConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Records were ingested (debounced): start a run, or join the one waiting. */
  async ingested(): Promise<void> {
    const run = await this.store.createRun('INGESTION', null);
    this.logger.info({ runId: run.id }, 'linkage run requested by ingestion');
    await this.advance(run.id);
  }

  /** Every unfinished run, moved on (the watchdog; also safe at any time). */
  async driveActiveRuns(): Promise<void> {
    for (const runId of await this.store.activeRunIds()) await this.advance(runId);
  }

  /**
   * Moves a run on: starts it when it is queued and no other runs; when its phase's units are all
   * done, plans the next phase (or finishes the run); and enqueues the pending units. Idempotent.
   */
  async advance(runId: string): Promise<void> {
    const outcome = await this.store.transaction(async (client) => {
      const run = await this.store.getRun(runId, client, true);
      if (!run || run.status === 'SUCCEEDED' || run.status === 'FAILED')
        return { pending: [], finished: false };
      if (run.status === 'QUEUED') {
        const { rows } = await client.query(`SELECT 1 FROM linkage_run WHERE status = 'RUNNING' LIMIT 1`);
        if (rows.length) return { pending: [], finished: false };
        await client.query(
          `UPDATE linkage_run SET status = 'RUNNING', phase = 'prepare', started_at = clock_timestamp(),
             updated_at = clock_timestamp(), previous_run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1)
           WHERE id = $1`,
          [runId],
        );
        await this.store.createUnits(client, runId, 'prepare', 1);
        run.phase = 'prepare';
        run.status = 'RUNNING';
      }
      let phase = run.phase!;
      for (;;) {
        const pending = await this.store.pendingUnits(client, runId, phase);
        if (pending.length)
          return { pending: pending.map((unit) => ({ runId, phase, unit })), finished: false };
        const next = PHASES[PHASES.indexOf(phase) + 1];
        if (!next) {
          await this.finish(client, await this.store.getRun(runId, client));
          return { pending: [], finished: true };
        }
        const fresh = (await this.store.getRun(runId, client))!;
        await this.store.createUnits(client, runId, next, this.unitsOf(next, fresh));
        await client.query(
          `UPDATE linkage_run SET phase = $2, updated_at = clock_timestamp() WHERE id = $1`,
          [runId, next],
        );
        this.logger.info({ runId, phase: next }, 'linkage phase started');
        phase = next;
      }
    });
    if (outcome.pending.length) await this.queue.units(outcome.pending);
    if (outcome.finished) await this.afterRun(runId);
  }

  private unitsOf(phase: LinkagePhase, run: LinkageRunRow): number {
    switch (phase) {
      case 'prepare':
      case 'estimate':
      case 'cluster':
        return 1;
      case 'normalise':
        return run.chunks ?? 0;
      case 'score':
        return run.partitions ?? 0;
    }
  }

  /**
   * Does one unit, unless it is done already or its run is over; then moves the run on. Throws on
   * failure, for BullMQ to retry.
   */
  async runUnit(job: LinkageUnitJob): Promise<void> {
    const { runId, phase, unit } = job;
    const run = await this.store.getRun(runId);
    if (!run || run.status !== 'RUNNING') return;
    const state = await this.store.unit(runId, phase, unit);
    if (!state) throw new Error(`linkage run ${runId} has no unit ${phase} ${unit}`);
    if (!state.done) {
      await this.store.countAttempt(runId, phase, unit);
      const started = Date.now();
      const committed = await this.execute(run, phase, unit);
      this.logger.info(
        { runId, phase, unit, ms: Date.now() - started, attempt: state.attempts + 1, committed },
        'linkage unit done',
      );
    }
    await this.advance(runId);
  }

  private async execute(run: LinkageRunRow, phase: LinkagePhase, unit: number): Promise<boolean> {
    switch (phase) {
      case 'prepare':
        return this.prepare(run);
      case 'normalise':
        return this.normalise(run, unit);
      case 'estimate':
        return this.estimate(run);
      case 'score':
        return this.score(run, unit);
      case 'cluster':
        return this.cluster(run);
    }
  }

  /** Commits a unit after the test pause (see LINKAGE_UNIT_PAUSE_MS). */
  private async commit(
    run: LinkageRunRow,
    phase: LinkagePhase,
    unit: number,
    stats: Record<string, unknown>,
    write: (client: PoolClient) => Promise<void>,
  ): Promise<boolean> {
    if (this.config.LINKAGE_UNIT_PAUSE_MS > 0) await sleep(this.config.LINKAGE_UNIT_PAUSE_MS);
    return this.store.commitUnit(run.id, phase, unit, stats, write);
  }

  /** Phase 1: the datasets with identity fields, cut into chunks of consecutive record keys. */
  private async prepare(run: LinkageRunRow): Promise<boolean> {
    const datasets = await this.store.query<RunDataset>(
      `SELECT d.id, d.slug, d.key_field AS "keyField", k.type AS "keyType",
              json_agg(json_build_object('name', f.name, 'type', f.type, 'identity', f.identity) ORDER BY f.position)
                AS fields
         FROM dataset d
         JOIN dataset_field f ON f.dataset_id = d.id AND f.identity IS NOT NULL
         JOIN dataset_field k ON k.dataset_id = d.id AND k.name = d.key_field
        GROUP BY d.id, k.type
        ORDER BY d.created_at, d.id`,
    );
    if (datasets.length > 65_535) throw new Error('linkage takes at most 65,535 datasets');
    const size = this.config.LINKAGE_CHUNK_RECORDS;
    const chunks: { dataset_no: number; key_after: string | null; key_last: string | null }[] = [];
    let records = 0;
    for (const [no, dataset] of datasets.entries()) {
      const table = `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(dataset.slug)}`;
      const key = quoteIdent(dataset.keyField);
      const [{ n }] = await this.store.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      // Every size-th key in key order ends a chunk; the last chunk is open-ended.
      const bounds = await this.store.query<{ k: string }>(
        `SELECT k FROM (SELECT ${key}::text AS k, row_number() OVER (ORDER BY ${key}) AS rn FROM ${table}) s
          WHERE rn % $1 = 0 ORDER BY rn`,
        [size],
      );
      let after: string | null = null;
      for (const { k } of bounds) {
        chunks.push({ dataset_no: no, key_after: after, key_last: k });
        after = k;
      }
      if (n % size !== 0) chunks.push({ dataset_no: no, key_after: after, key_last: null });
      records += n;
    }
    if (chunks.length > MAX_CHUNKS) {
      throw new Error(`linkage takes at most ${MAX_CHUNKS} chunks: raise LINKAGE_CHUNK_RECORDS`);
    }
    const partitions = this.config.LINKAGE_PARTITIONS ?? partitionsFor(records);
    const settings: RunSettings = {
      chunkRecords: size,
      partitions,
      randomPairs: this.config.LINKAGE_RANDOM_PAIRS,
      threshold: thresholdWeight(this.config),
    };
    const stats = { datasets: datasets.length, records, chunks: chunks.length, partitions };
    return this.commit(run, 'prepare', 0, stats, async (client) => {
      await client.query(`DELETE FROM linkage_chunk WHERE run_id = $1`, [run.id]);
      await client.query(
        `INSERT INTO linkage_chunk (run_id, chunk, dataset_no, key_after, key_last)
         SELECT $1, c - 1, d, a, l FROM unnest($2::int[], $3::text[], $4::text[]) WITH ORDINALITY AS t(d, a, l, c)`,
        [
          run.id,
          chunks.map((c) => c.dataset_no),
          chunks.map((c) => c.key_after),
          chunks.map((c) => c.key_last),
        ],
      );
      await client.query(
        `UPDATE linkage_run SET datasets = $2, chunks = $3, partitions = $4, settings = $5, threshold = $6,
           units_total = 1 + $3 + 1 + $4 + 1 WHERE id = $1`,
        [
          run.id,
          JSON.stringify(datasets),
          chunks.length,
          partitions,
          JSON.stringify(settings),
          settings.threshold,
        ],
      );
    });
  }

  /** Phase 2, per chunk: its records normalised, and routed to the partitions of each blocking scheme. */
  private async normalise(run: LinkageRunRow, chunkNo: number): Promise<boolean> {
    const [chunk] = (await this.store.chunks(run.id)).filter((c) => c.chunk === chunkNo);
    if (!chunk) throw new Error(`linkage run ${run.id} has no chunk ${chunkNo}`);
    const dataset = run.datasets![chunk.dataset_no];
    const t0 = Date.now();
    const { keys, rows } = await this.readChunk(dataset, chunk.key_after, chunk.key_last);
    const t1 = Date.now();
    const normalised = normaliseChunk(chunkNo, chunk.dataset_no, rows, run.partitions!);
    const blobs: Blob[] = [
      { kind: 'records', a: chunkNo, b: 0, data: normalised.records.serialise() },
      { kind: 'keys', a: chunkNo, b: 0, data: Buffer.from(JSON.stringify(keys)) },
      ...[...normalised.parts].map(([p, batch]): Blob => ({
        kind: 'part',
        a: chunkNo,
        b: p,
        data: batch.serialise(),
      })),
    ];
    this.logger.debug(
      { runId: run.id, chunk: chunkNo, readMs: t1 - t0, computeMs: Date.now() - t1 },
      'linkage chunk normalised',
    );
    const stats = { records: rows.length, unparsed: normalised.unparsed };
    return this.commit(run, 'normalise', chunkNo, stats, async (client) => {
      await client.query(
        `DELETE FROM linkage_blob WHERE run_id = $1 AND kind IN ('records', 'keys', 'part') AND a = $2`,
        [run.id, chunkNo],
      );
      await this.store.putBlobs(client, run.id, blobs);
    });
  }

  /** A chunk's record keys and identity values, in key order. */
  private async readChunk(
    dataset: RunDataset,
    after: string | null,
    last: string | null,
  ): Promise<{ keys: string[]; rows: IdentityValues[] }> {
    const table = `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(dataset.slug)}`;
    const key = quoteIdent(dataset.keyField);
    const keyType = columnTypeOf(dataset.keyType as FieldType);
    const columns = dataset.fields.map((f) => identityText(quoteIdent(f.name), f.type));
    const params: unknown[] = [];
    const conditions: string[] = [];
    if (after !== null) conditions.push(`${key} > $${params.push(after)}::${keyType}`);
    if (last !== null) conditions.push(`${key} <= $${params.push(last)}::${keyType}`);
    const result = (await this.store.queryArrays(
      `SELECT ${key}::text, ${columns.join(', ')} FROM ${table}
        ${conditions.length ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY ${key}`,
      params,
    )) as (string | null)[][];
    const keys: string[] = new Array<string>(result.length);
    const rows: IdentityValues[] = new Array<IdentityValues>(result.length);
    const properties = dataset.fields.map((f) => IDENTITY_PROPERTY[f.identity as IdentityRoleName]);
    for (let r = 0; r < result.length; r++) {
      const values = result[r];
      keys[r] = values[0]!;
      const identity: IdentityValues = emptyIdentityValues();
      for (let i = 0; i < properties.length; i++) identity[properties[i]] = values[i + 1];
      rows[r] = identity;
    }
    return { keys, rows };
  }

  /** Phase 3: term frequencies, u from random pairs, m by EM on the first partitions. */
  private async estimate(run: LinkageRunRow): Promise<boolean> {
    const settings = run.settings!;
    const chunks = (await this.store.getBlobs(run.id, 'records')).map((b) => RecordBatch.deserialise(b.data));
    const emParts: RecordBatch[] = [];
    let held = 0;
    for (let p = 0; p < run.partitions! && held < DEFAULT_SETTINGS.emRecords; p++) {
      const part = await this.loadPartition(run.id, p);
      emParts.push(part);
      held += part.size;
    }
    await yieldToEventLoop();
    const { model, tf } = fitModel(chunks, emParts, run.partitions!, {
      ...DEFAULT_SETTINGS,
      threshold: settings.threshold,
      randomPairs: settings.randomPairs,
    });
    const stats = { emPairs: model.emPairs, emIterations: model.emIterations, lambda: model.lambda };
    return this.commit(run, 'estimate', 0, stats, async (client) => {
      await client.query(`UPDATE linkage_run SET model = $2 WHERE id = $1`, [run.id, JSON.stringify(model)]);
      await this.store.putBlobs(client, run.id, [
        { kind: 'tf', a: 0, b: 0, data: Buffer.from(termFrequenciesToJson(tf)) },
      ]);
    });
  }

  /** All chunks' records of one partition. */
  private async loadPartition(runId: string, partition: number): Promise<RecordBatch> {
    const blobs = await this.store.getBlobs(runId, 'part', { b: partition });
    return RecordBatch.concat(
      blobs.length ? blobs.map((b) => RecordBatch.deserialise(b.data)) : [RecordBatch.builder(0).build()],
    );
  }

  /** Phase 4, per partition: every candidate pair weighed; links kept. */
  private async score(run: LinkageRunRow, partition: number): Promise<boolean> {
    const t0 = Date.now();
    const { model, tf } = await this.fitted(run.id);
    const t1 = Date.now();
    const part = await this.loadPartition(run.id, partition);
    this.logger.debug(
      { runId: run.id, partition, modelMs: t1 - t0, loadMs: Date.now() - t1 },
      'linkage partition loaded',
    );
    const cpuBefore = process.cpuUsage();
    const scoring = new PartitionScorer(part).useModel(model, tf).scoring();
    // Slices of about 100 ms, between which BullMQ can renew the job's lock.
    while (!scoring.step(200_000)) await yieldToEventLoop();
    const cpu = process.cpuUsage(cpuBefore);
    const result = scoring.result();
    this.logger.debug(
      {
        runId: run.id,
        partition,
        records: part.size,
        pairs: result.pairs,
        cpuMs: (cpu.user + cpu.system) / 1000,
      },
      'linkage partition scored',
    );
    const histogram: Record<string, number> = {};
    result.histogram.forEach((pairs, bin) => {
      if (pairs) histogram[bin] = pairs;
    });
    const stats: ScoreStats = {
      pairs: result.pairs,
      links: result.links.size,
      histogram,
      skippedBlocks: result.skippedBlocks,
      pairsByRule: result.pairsByRule,
      records: part.size,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    };
    return this.commit(
      run,
      'score',
      partition,
      stats as unknown as Record<string, unknown>,
      async (client) => {
        await this.store.putBlobs(client, run.id, [
          { kind: 'links', a: 0, b: partition, data: serialiseLinks(result.links) },
          { kind: 'review', a: 0, b: partition, data: Buffer.from(JSON.stringify(result.review)) },
        ]);
      },
    );
  }

  /** The run's model and term frequencies, read once per run by each worker (they do not change). */
  private async fitted(runId: string): Promise<{ model: LinkageModel; tf: TermFrequencies }> {
    if (this.cachedFit?.runId !== runId) {
      const model = await this.model(runId);
      const [tfBlob] = await this.store.getBlobs(runId, 'tf');
      if (!tfBlob) throw new Error(`linkage run ${runId} has no term frequencies`);
      this.cachedFit = { runId, model, tf: termFrequenciesFromJson(tfBlob.data.toString()) };
    }
    return this.cachedFit;
  }

  private async model(runId: string): Promise<LinkageModel> {
    const [row] = await this.store.query<{ model: LinkageModel | null }>(
      `SELECT model FROM linkage_run WHERE id = $1`,
      [runId],
    );
    if (!row?.model) throw new Error(`linkage run ${runId} has no model`);
    return row.model;
  }

  /**
   * Phase 5: links → clusters (without chaining) → person ids, kept from the previous run where a
   * cluster holds most of a previous person's records; written per record in one COPY.
   */
  private async cluster(run: LinkageRunRow): Promise<boolean> {
    const cpuBefore = process.cpuUsage();
    const chunkRows = await this.store.chunks(run.id);
    const records = (await this.store.getBlobs(run.id, 'records')).map((b) =>
      RecordBatch.deserialise(b.data),
    );
    const keys = (await this.store.getBlobs(run.id, 'keys')).map(
      (b) => JSON.parse(b.data.toString()) as string[],
    );
    if (records.length !== chunkRows.length || keys.length !== chunkRows.length) {
      throw new Error(`linkage run ${run.id} is missing normalised chunks`);
    }
    const links: Links[] = (await this.store.getBlobs(run.id, 'links')).map((b) => deserialiseLinks(b.data));
    const datasets = run.datasets!;
    // Reviewers' decisions, as record ids of this run: "same" joins the two, "not same" keeps
    // them apart, whatever the weights say.
    const decided = await this.decisions(chunkRows, keys, datasets);
    await yieldToEventLoop();
    const clusters = clusterLinks(records, [...links, decided.together], decided.apart);
    await yieldToEventLoop();
    const review = await this.reviewPairs(run, chunkRows, keys);

    const previous = new Float64Array(clusters.label.length).fill(-1);
    if (run.previous_run_id) {
      const byKey = new Map<string, number>();
      const rows = await this.store.query<{ dataset_id: string; record_key: string; person_id: string }>(
        `SELECT dataset_id, record_key, person_id FROM linkage_person WHERE run_id = $1`,
        [run.previous_run_id],
      );
      for (const row of rows) byKey.set(`${row.dataset_id}\u0000${row.record_key}`, Number(row.person_id));
      chunkRows.forEach((chunk, c) => {
        const datasetId = datasets[chunk.dataset_no].id;
        const offset = clusters.offsets[c];
        keys[c].forEach((key, i) => {
          previous[offset + i] = byKey.get(`${datasetId}\u0000${key}`) ?? -1;
        });
      });
    }

    // Filled in by the commit, which serialises it after writing.
    const stats: Record<string, unknown> = {};
    return this.commit(run, 'cluster', 0, stats, async (client) => {
      // New ids continue from the state read in this transaction, so an attempt that dies before
      // committing leaves the next attempt the same ids.
      const { rows } = await client.query<{ next: string }>(
        `SELECT next_person_id AS next FROM linkage_state WHERE id = 1 FOR UPDATE`,
      );
      const assigned = assignPersonIds(clusters.label, previous, Number(rows[0].next));
      await client.query(`DELETE FROM linkage_person WHERE run_id = $1`, [run.id]);
      const copy = client.query(
        copyFrom(`COPY linkage_person (run_id, dataset_id, record_key, person_id) FROM STDIN`),
      );
      let text = '';
      const flush = async () => {
        if (!copy.write(text)) await once(copy, 'drain');
        text = '';
      };
      for (let c = 0; c < chunkRows.length; c++) {
        const datasetId = datasets[chunkRows[c].dataset_no].id;
        const offset = clusters.offsets[c];
        const chunkKeys = keys[c];
        for (let i = 0; i < chunkKeys.length; i++) {
          const person = assigned.personOf.get(clusters.label[offset + i])!;
          text += `${run.id}\t${datasetId}\t${copyText(chunkKeys[i])}\t${person}\n`;
          if (text.length >= 1 << 20) await flush();
        }
      }
      if (text) await flush();
      copy.end();
      await finished(copy);
      await client.query(`UPDATE linkage_state SET next_person_id = $1 WHERE id = 1`, [assigned.nextId]);
      await client.query(`DELETE FROM linkage_review_pair WHERE run_id = $1`, [run.id]);
      if (review.length) {
        await client.query(
          `INSERT INTO linkage_review_pair (run_id, pair, dataset_a, key_a, dataset_b, key_b, levels, weight)
           SELECT $1, p.pair, p.dataset_a, p.key_a, p.dataset_b, p.key_b, p.levels, p.weight
             FROM jsonb_to_recordset($2::jsonb) AS p(pair int, dataset_a uuid, key_a text, dataset_b uuid,
                  key_b text, levels jsonb, weight double precision)`,
          [run.id, JSON.stringify(review)],
        );
      }
      const cpu = process.cpuUsage(cpuBefore);
      Object.assign(stats, {
        persons: clusters.count,
        merges: clusters.merges,
        refused: clusters.refused,
        kept: assigned.kept,
        created: assigned.created,
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      });
    });
  }

  /**
   * The reviewers' decisions on pairs of this run's records, as record ids: pairs decided "same"
   * as links that outweigh anything, pairs decided "not same" as pairs to keep apart. Decisions on
   * records no longer in the run are left aside.
   */
  private async decisions(
    chunkRows: readonly ChunkRow[],
    keys: readonly string[][],
    datasets: readonly RunDataset[],
  ): Promise<{ together: Links; apart: [number, number][] }> {
    const rows = await this.store.query<{
      dataset_a: string;
      key_a: string;
      dataset_b: string;
      key_b: string;
      same: boolean;
    }>(
      `SELECT dataset_a, key_a, dataset_b, key_b, same FROM linkage_decision
        ORDER BY dataset_a, key_a, dataset_b, key_b`,
    );
    const together: Links = {
      size: 0,
      a: new Uint32Array(0),
      b: new Uint32Array(0),
      weight: new Float32Array(0),
    };
    if (!rows.length) return { together, apart: [] };
    const wanted = new Set(
      rows.flatMap((r) => [`${r.dataset_a}\u0000${r.key_a}`, `${r.dataset_b}\u0000${r.key_b}`]),
    );
    const recordOf = new Map<string, number>();
    chunkRows.forEach((chunk, c) => {
      const datasetId = datasets[chunk.dataset_no].id;
      keys[c].forEach((key, i) => {
        const k = `${datasetId}\u0000${key}`;
        if (wanted.has(k)) recordOf.set(k, recordIdOf(chunk.chunk, i));
      });
    });
    const same: [number, number][] = [];
    const apart: [number, number][] = [];
    for (const r of rows) {
      const x = recordOf.get(`${r.dataset_a}\u0000${r.key_a}`);
      const y = recordOf.get(`${r.dataset_b}\u0000${r.key_b}`);
      if (x === undefined || y === undefined) continue;
      (r.same ? same : apart).push([x, y]);
    }
    return {
      together: {
        size: same.length,
        a: Uint32Array.from(same.map(([x]) => x)),
        b: Uint32Array.from(same.map(([, y]) => y)),
        weight: new Float32Array(same.length).fill(DECIDED_WEIGHT),
      },
      apart,
    };
  }

  /**
   * The run's pairs nearest its threshold, for review: the nearest of every partition's, named by
   * their records (dataset and key, which only stewards of the records' agencies may read) and
   * their comparison levels.
   */
  private async reviewPairs(run: LinkageRunRow, chunkRows: readonly ChunkRow[], keys: readonly string[][]) {
    const gathered = (await this.store.getBlobs(run.id, 'review')).flatMap(
      (b) => JSON.parse(b.data.toString()) as ReviewPair[],
    );
    const threshold = run.threshold ?? DEFAULT_SETTINGS.threshold;
    const byChunk = new Map(chunkRows.map((c) => [c.chunk, c]));
    const side = (recordId: number) => {
      const chunk = byChunk.get(Math.floor(recordId / MAX_CHUNK_RECORDS))!;
      return {
        dataset: run.datasets![chunk.dataset_no].id,
        key: keys[chunk.chunk][recordId % MAX_CHUNK_RECORDS],
      };
    };
    return nearestFirst(gathered, threshold)
      .slice(0, REVIEW_PAIRS)
      .map((p, k) => {
        const a = side(p.a);
        const b = side(p.b);
        return {
          pair: k + 1,
          dataset_a: a.dataset,
          key_a: a.key,
          dataset_b: b.dataset,
          key_b: b.key,
          levels: decodePattern(p.pattern),
          weight: p.weight,
        };
      });
  }

  /** Marks a run SUCCEEDED (in the caller's transaction): statistics, histogram, the run in force, audit. */
  private async finish(client: PoolClient, run: LinkageRunRow | null): Promise<void> {
    if (!run) return;
    const normalised = await this.store.unitStats<{ records: number; unparsed?: UnparsedCounts }>(
      client,
      run.id,
      'normalise',
    );
    const scored = await this.store.unitStats<ScoreStats>(client, run.id, 'score');
    const [clustered] = await this.store.unitStats<{ persons: number; refused: number }>(
      client,
      run.id,
      'cluster',
    );
    const bins = new Map<number, number>();
    for (const s of scored) {
      for (const [bin, pairs] of Object.entries(s.histogram))
        bins.set(Number(bin), (bins.get(Number(bin)) ?? 0) + pairs);
    }
    const histogram: { lower: number; upper: number; pairs: number }[] = [];
    if (bins.size) {
      const lowest = Math.min(...bins.keys());
      const highest = Math.max(...bins.keys());
      for (let bin = lowest; bin <= highest; bin++) {
        histogram.push({
          lower: bin + HISTOGRAM_MIN,
          upper: bin + HISTOGRAM_MIN + 1,
          pairs: bins.get(bin) ?? 0,
        });
      }
    }
    const stats: RunStats = {
      records: normalised.reduce((n, s) => n + s.records, 0),
      candidatePairs: scored.reduce((n, s) => n + s.pairs, 0),
      links: scored.reduce((n, s) => n + s.links, 0),
      persons: clustered?.persons ?? 0,
      refusedMerges: clustered?.refused ?? 0,
      skippedBlocks: scored.reduce((n, s) => n + s.skippedBlocks, 0),
      scoreCpuMs: scored.reduce((n, s) => n + s.cpuMs, 0),
      unparsed: sumUnparsed(normalised.map((s) => s.unparsed)),
      pairsByRule: BLOCKING_RULES.map((rule, r) => ({
        rule: rule.name,
        pairs: scored.reduce((n, s) => n + (s.pairsByRule[r] ?? 0), 0),
      })),
    };
    await client.query(
      `UPDATE linkage_run SET status = 'SUCCEEDED', phase = NULL, finished_at = clock_timestamp(),
         updated_at = clock_timestamp(), units_done = units_total, stats = $2, weight_histogram = $3
       WHERE id = $1`,
      [run.id, JSON.stringify(stats), JSON.stringify(histogram)],
    );
    await client.query(`UPDATE linkage_state SET current_run_id = $1 WHERE id = 1`, [run.id]);
    // Last before COMMIT: the audit chain's lock is held only for the commit itself.
    await this.audit.appendOnClient(client, {
      actorUserId: run.requested_by,
      actorAgencyId: null,
      action: AuditAction.LINKAGE_RUN,
      decision: 'ALLOW',
      reason: `SUCCEEDED: ${stats.records} records, ${stats.links} links, ${stats.persons} persons`,
      rowCount: stats.records,
      details: { runId: run.id, trigger: run.trigger, status: 'SUCCEEDED', ...pick(stats) },
    });
    this.logger.info({ runId: run.id, ...pick(stats) }, 'linkage run succeeded');
  }

  /** Marks a run FAILED (its units gave up), audits it, and starts the next waiting run. */
  async failRun(runId: string, message: string): Promise<void> {
    const failed = await this.store.transaction(async (client) => {
      const run = await this.store.getRun(runId, client, true);
      if (!run || (run.status !== 'QUEUED' && run.status !== 'RUNNING')) return false;
      const error = message.slice(0, 1000);
      await client.query(
        `UPDATE linkage_run SET status = 'FAILED', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
           error = $2 WHERE id = $1`,
        [runId, error],
      );
      await this.audit.appendOnClient(client, {
        actorUserId: run.requested_by,
        actorAgencyId: null,
        action: AuditAction.LINKAGE_RUN,
        decision: 'ALLOW',
        reason: `FAILED: ${error}`.slice(0, 1000),
        details: { runId, trigger: run.trigger, status: 'FAILED', phase: run.phase },
      });
      return true;
    });
    if (failed) {
      this.logger.error({ runId, error: message.slice(0, 300) }, 'linkage run failed');
      await this.afterRun(runId);
    }
  }

  /** After a run ends: its intermediate results and the superseded persons go; the next waiting run starts. */
  private async afterRun(runId: string): Promise<void> {
    await this.store.deleteBlobs(runId);
    await this.store.query(
      `DELETE FROM linkage_person p USING linkage_run r
        WHERE p.run_id = r.id AND r.status IN ('SUCCEEDED', 'FAILED')
          AND r.id <> (SELECT current_run_id FROM linkage_state WHERE id = 1)`,
    );
    const [next] = await this.store.query<{ id: string }>(
      `SELECT id FROM linkage_run WHERE status = 'QUEUED' ORDER BY created_at, id LIMIT 1`,
    );
    if (next) await this.advance(next.id);
  }
}

/** Unparsed values per role, summed over the chunks. */
function sumUnparsed(chunks: readonly (UnparsedCounts | undefined)[]): UnparsedCounts {
  const total = emptyUnparsedCounts();
  for (const chunk of chunks) {
    if (!chunk) continue;
    for (const role of IDENTITY_ROLES) total[role] += chunk[role] ?? 0;
  }
  return total;
}

const pick = (stats: RunStats) => ({
  records: stats.records,
  candidatePairs: stats.candidatePairs,
  links: stats.links,
  persons: stats.persons,
});

/** A value in COPY's text format. */
function copyText(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
    : value;
}
