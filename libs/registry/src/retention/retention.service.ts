import { Inject, Injectable, Optional } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService } from '@broker/audit';
import { Database, MetricsService, quoteIdent } from '@broker/core';
import { RECORDS_DESTROYED_HOOK, type RecordsDestroyedHook } from '@broker/jobs';
import { buildRecordIndex, namedRecordIndex } from '../dataset/record-indexes';
import { hashLookupsDestroyed, hashLookupsDestroying } from '../dataset/hash-lookup';
import type { FieldType } from '../dataset/dataset-schema';
import { recordTable } from '../dataset/record-table';
import { lockLinkageForDestruction, lowerLinkageChunkBounds } from './linkage-chunks';
import { cutoffParameter, pastRetentionSql, retentionCutoff, undatedSql } from './retention-cutoff';

/** Records destroyed per transaction: small enough that no batch holds its row locks for long. */
export const RETENTION_BATCH = 1000;

/** What one run of the retention job did, per dataset. */
export interface RetentionRunReport {
  datasets: { datasetId: string; destroyed: number; batches: number; keptWithoutDate: number }[];
  destroyed: number;
  /**
   * The linkage runs its batches requested (or joined, when one was waiting): they destroyed records
   * the run in force had assigned to persons. Each was created in the batch's transaction.
   */
  linkageRuns: string[];
}

interface RetainedDataset {
  id: string;
  slug: string;
  key_field: string;
  key_type: FieldType;
  subject_field: string | null;
  retention_days: number;
  retention_field: string;
}

/**
 * Destroys records past their dataset's retention (DESIGN §4.4), with what linkage derived from them
 * (each run's person assignment of the record, the pairs kept for review and the decisions that name
 * the record, the normalised identifiers of finished runs and of a run under way, and the model a run
 * under way learned from it, which the run learns again: both through {@link RECORDS_DESTROYED_HOOK};
 * and the chunk bounds of a run under way that name it, lowered: see {@link lowerLinkageChunkBounds}). Each batch takes `LINKAGE_CHUNKS_LOCK` right after its
 * DELETE, so that no linkage transaction writes anything derived from the records it destroys
 * after it (see {@link lockLinkageForDestruction}). The persons of the run in force that records
 * stay in may have been joined through a destroyed record: a batch that destroys records the run in
 * force had assigned to persons requests a linkage run through the hook, in its transaction, and the
 * run is enqueued once the sweep is over (a run Redis could not take is started by linkage's
 * watchdog: it is in PostgreSQL, committed with the destruction).
 *
 * Idempotent and resumable: each batch is one transaction that deletes up to {@link RETENTION_BATCH}
 * records, their linkage assignments, writes what subject access reports need of them (subject and
 * row id, never a value), and appends its RECORDS_DESTROYED event with the count, so a crash loses a
 * batch wholly or not at all, and the next run simply finds what is still past retention. Rows are
 * taken with SKIP LOCKED, so a batch never waits for ingestion, and ingestion or a query waits at most
 * for one small batch. Consent and release records stay: subject access reports keep answering.
 */
@Injectable()
export class RetentionService {
  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    metrics: MetricsService,
    @Optional() @Inject(RECORDS_DESTROYED_HOOK) private readonly linkage?: RecordsDestroyedHook,
  ) {
    // The last run as PostgreSQL has it, read at each scrape: whichever worker ran it, and after any
    // restart, the metrics show when retention last ran and what it destroyed.
    const read = async () => {
      const [row] = await this.dataSource.query<
        { started: number | null; finished: number | null; destroyed: string | null }[]
      >(
        `SELECT extract(epoch FROM last_started_at)::float8 AS started, extract(epoch FROM last_finished_at)::float8 AS finished,
                last_destroyed::text AS destroyed FROM retention_schedule WHERE id = 1`,
      );
      return row;
    };
    if (!metrics.registry.getSingleMetric('broker_retention_last_run_timestamp_seconds')) {
      new Gauge({
        name: 'broker_retention_last_run_timestamp_seconds',
        help: 'When the retention job last started and finished (Unix time), from PostgreSQL',
        labelNames: ['phase'] as const,
        registers: [metrics.registry],
        async collect() {
          const row = await read().catch(() => undefined);
          if (row?.started != null) this.set({ phase: 'started' }, row.started);
          if (row?.finished != null) this.set({ phase: 'finished' }, row.finished);
        },
      });
      new Gauge({
        name: 'broker_retention_last_destroyed_records',
        help: 'Records the last finished retention run destroyed',
        registers: [metrics.registry],
        async collect() {
          const row = await read().catch(() => undefined);
          if (row?.destroyed != null) this.set(Number(row.destroyed));
        },
      });
    }
  }

  /** One run over every dataset with retention, recorded in `retention_schedule`. */
  async run(options: { batch?: number; now?: Date } = {}): Promise<RetentionRunReport> {
    const batch = options.batch ?? RETENTION_BATCH;
    await this.dataSource.query(
      `UPDATE retention_schedule SET last_started_at = clock_timestamp(), last_error = NULL WHERE id = 1`,
    );
    const report: RetentionRunReport = { datasets: [], destroyed: 0, linkageRuns: [] };
    const linkageRuns = new Set<string>();
    try {
      const datasets = await this.dataSource.query<RetainedDataset[]>(
        `SELECT d.id, d.slug, d.key_field, k.type AS key_type, d.subject_field, d.retention_days, d.retention_field
           FROM dataset d JOIN dataset_field k ON k.dataset_id = d.id AND k.name = d.key_field
          WHERE d.retention_days IS NOT NULL ORDER BY d.slug`,
      );
      for (const dataset of datasets) {
        const done = await this.destroyExpired(dataset, batch, linkageRuns, options.now);
        report.datasets.push(done);
        report.destroyed += done.destroyed;
      }
      await this.dataSource.query(
        `UPDATE retention_schedule SET last_finished_at = clock_timestamp(), last_destroyed = $1 WHERE id = 1`,
        [report.destroyed],
      );
      report.linkageRuns = [...linkageRuns];
      return report;
    } catch (error) {
      await this.dataSource
        .query(`UPDATE retention_schedule SET last_error = $1 WHERE id = 1`, [
          error instanceof Error ? error.message.slice(0, 2000) : String(error),
        ])
        .catch(() => undefined);
      throw error;
    } finally {
      // After the batches that requested them committed, and once per sweep (its batches join the run
      // while it waits): never throws, and waits for Redis a few seconds at most per run.
      for (const runId of linkageRuns) await this.linkage?.runRequested(runId);
    }
  }

  private async destroyExpired(
    dataset: RetainedDataset,
    batch: number,
    linkageRuns: Set<string>,
    now?: Date,
  ) {
    const table = recordTable(dataset.slug);
    const field = quoteIdent(dataset.retention_field);
    const key = quoteIdent(dataset.key_field);
    const subject = dataset.subject_field ? `t.${quoteIdent(dataset.subject_field)}::text` : 'NULL::text';
    // One cutoff for the whole run, so that batches agree on what is past retention.
    const cutoff = await retentionCutoff(this.dataSource, dataset.retention_days, now);
    // The batches find their rows through an index on the retention field; built concurrently, so
    // that neither ingestion nor queries wait for it (and again if an earlier build failed).
    const index = namedRecordIndex(
      dataset.slug,
      `${dataset.slug.slice(0, 40)}_retention_${dataset.retention_field.slice(0, 12)}_idx`,
      [field],
    );
    await this.db.connection((client) => buildRecordIndex(client, index));
    const [{ n: keptWithoutDate }] = await this.dataSource.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM ${table} WHERE ${undatedSql(field)}`,
    );
    let destroyed = 0;
    let batches = 0;
    for (;;) {
      const count = await this.db.transaction(async (tx) => {
        const { manager } = tx;
        // Which destroyed records had a value in each field with a HASH lookup table, counted for it.
        const tabled = await hashLookupsDestroying(manager, dataset.id);
        const gone = await manager.query<
          { key: string; subject: string | null; rid: string; valued?: string }[]
        >(
          `WITH doomed AS (
             SELECT ctid FROM ${table} WHERE ${pastRetentionSql(field, '$1')} ORDER BY ${field} LIMIT $2 FOR UPDATE SKIP LOCKED
           ),
           gone AS (
             DELETE FROM ${table} t USING doomed d WHERE t.ctid = d.ctid
             RETURNING t.${key}::text AS key, ${subject} AS subject, t."_rid"::text AS rid${tabled.returning}
           )
           -- a SELECT, so that the driver returns the rows (it returns a count for a bare DELETE)
           SELECT key, subject, rid${tabled.counts} FROM gone`,
          [cutoffParameter(cutoff), batch],
        );
        if (!gone.length) return 0;
        const keys = gone.map((g) => g.key);
        // Linkage's writes of what it derives from records wait from here on, and those under way
        // commit first: what they wrote is found below.
        await lockLinkageForDestruction(manager);
        // Every run's persons of them; those of the run in force are counted: if any, a run is requested.
        const [{ in_force: assignedInForce }] = await manager.query<{ in_force: number }[]>(
          `WITH gone AS (
             DELETE FROM linkage_person WHERE dataset_id = $1 AND record_key = ANY($2::text[]) RETURNING run_id
           )
           SELECT count(*)::int AS in_force FROM gone
            WHERE run_id = (SELECT current_run_id FROM linkage_state WHERE id = 1)`,
          [dataset.id, keys],
        );
        // Linkage's pairs kept for review (their comparison levels were read from these records) and
        // reviewers' decisions on them: a later record under the same key must not inherit them.
        for (const table of ['linkage_review_pair', 'linkage_decision']) {
          await manager.query(
            `DELETE FROM ${table} WHERE (dataset_a = $1 AND key_a = ANY($2::text[]))
                OR (dataset_b = $1 AND key_b = ANY($2::text[]))`,
            [dataset.id, keys],
          );
        }
        // The chunks of a linkage run under way name no destroyed record: their bounds are lowered.
        await lowerLinkageChunkBounds(
          manager,
          { id: dataset.id, slug: dataset.slug, keyField: dataset.key_field, keyType: dataset.key_type },
          keys,
        );
        // Nor does its normalised data (its records, keys, partitions), nor a model it learned from
        // them: such a run goes back to its estimate phase, what it scored and clustered deleted. And
        // when the run in force had assigned some of them to persons, the records that stay may be
        // joined through them: a run is requested (or the waiting one joined), committed with this batch.
        const linkageRun =
          (await this.linkage?.recordsDestroyed(tx.client, dataset.id, keys, assignedInForce)) ?? null;
        if (linkageRun) linkageRuns.add(linkageRun);
        // And from the personKey lookup tables (libs/linkage/src/person-key-index.ts).
        await manager.query(
          `DELETE FROM person_key WHERE record_key = ANY($2::text[])
              AND scope_id IN (SELECT id FROM person_key_scope WHERE dataset_id = $1)`,
          [dataset.id, keys],
        );
        // The lookup tables of HASH names that filed a value of theirs are dropped with their entries
        // (the DELETE above holds the record table's lock that a build waits for).
        await hashLookupsDestroyed(manager, dataset.id, tabled.destroyed(gone[0]));
        const subjects = gone.filter((g) => g.subject !== null);
        if (subjects.length) {
          await manager.query(
            `INSERT INTO destroyed_record (dataset_id, subject_id, rid)
             SELECT $1, s, r FROM unnest($2::text[], $3::bigint[]) AS u (s, r) ON CONFLICT DO NOTHING`,
            [dataset.id, subjects.map((g) => g.subject), subjects.map((g) => g.rid)],
          );
        }
        await this.audit.append(
          {
            action: AuditAction.RECORDS_DESTROYED,
            decision: 'ALLOW',
            datasetId: dataset.id,
            rowCount: gone.length,
            reason: `past retention: ${dataset.retention_field} before ${cutoff.toISOString()} (${dataset.retention_days} days)`,
            details: {
              cutoff: cutoff.toISOString(),
              retentionDays: dataset.retention_days,
              keptWithoutDate,
              ...(linkageRun ? { linkageRun } : {}),
            },
          },
          manager,
        );
        return gone.length;
      });
      if (!count) break;
      destroyed += count;
      batches += 1;
      if (count < batch) break;
    }
    if (destroyed) {
      // Normalised identifiers of finished runs may include the destroyed records (their clean-up
      // after the run had not come yet); a run rebuilds them from the records, so they go. A run
      // under way had the destroyed records removed from its own in each batch (above).
      await this.dataSource.query(
        `DELETE FROM linkage_blob WHERE run_id IN (SELECT id FROM linkage_run WHERE status IN ('SUCCEEDED', 'FAILED'))`,
      );
    }
    return { datasetId: dataset.id, destroyed, batches, keptWithoutDate };
  }
}
