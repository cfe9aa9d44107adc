import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { RequestContext } from '@broker/auth';
import { BrokerError, Database, ErrorCode, quoteIdent } from '@broker/core';
import {
  type DatasetRetention,
  NO_RETENTION,
  requireValidRetention,
  retentionAsked,
} from '../dataset/dataset-retention';
import { DatasetService } from '../dataset/dataset.service';
import { recordTable } from '../dataset/record-table';
import type { RetentionPreviewModel } from './retention-preview.model';
import { cutoffParameter, pastRetentionSql, retentionCutoff, undatedSql } from './retention-cutoff';

/**
 * How long the count of a preview may run (its statement time limit): one pass over the record
 * table, about a second per few million records (docs/register.md); past it the preview is refused
 * as a LIMIT and the retention can still be changed.
 */
export const RETENTION_PREVIEW_TIMEOUT_MS = 10_000;

/** PostgreSQL's error for a statement stopped at its time limit (or cancelled). */
const QUERY_CANCELED = '57014';

/**
 * Counts what a retention would destroy before a steward sets it (DESIGN §4.4): the records the
 * daily job would destroy under the proposed retention and under the current one, at one instant,
 * with the job's own cutoff and condition (retention-cutoff.ts). Who may ask is who may change the
 * retention (`updateDataset`: a steward of the provider, by {@link DatasetService.requireWritable});
 * the proposed retention is checked as `updateDataset` checks it. Changes nothing: one read-only
 * snapshot, one statement over the record table, bounded by {@link statementTimeoutMs}.
 */
@Injectable()
export class RetentionPreviewService {
  /** The count's statement time limit (see {@link RETENTION_PREVIEW_TIMEOUT_MS}). */
  statementTimeoutMs = RETENTION_PREVIEW_TIMEOUT_MS;

  constructor(
    private readonly db: Database,
    private readonly datasets: DatasetService,
  ) {}

  /**
   * What `proposed` (the retention as it would stand: both null, or `retentionDays: 0` as
   * `updateDataset` reads it, for none) would destroy, beside what
   * the current retention would, counted at `options.now` (default: the database's clock, as the
   * job's run) and changing nothing.
   */
  async preview(
    ctx: RequestContext,
    datasetId: string,
    proposed: { retentionDays?: number | null; retentionField?: string | null },
    options: { now?: Date } = {},
  ): Promise<RetentionPreviewModel> {
    const dataset = await this.datasets.requireWritable(ctx, datasetId, 'update');
    const next = requireValidRetention(retentionAsked(proposed, NO_RETENTION), dataset.fields);
    const current: DatasetRetention = {
      retentionDays: dataset.retentionDays,
      retentionField: dataset.retentionField,
    };
    try {
      return await this.db.transaction(
        async ({ manager }) => {
          await manager.query(`SELECT set_config('statement_timeout', $1, true)`, [
            `${Math.max(1, Math.floor(this.statementTimeoutMs))}ms`,
          ]);
          const asOf =
            options.now ?? (await manager.query<{ now: Date }[]>(`SELECT clock_timestamp() AS now`))[0].now;
          const nextCutoff = await cutoffOf(manager, next, asOf);
          const currentCutoff = await cutoffOf(manager, current, asOf);
          const params: unknown[] = [];
          // Bound once per condition, never shared: each parameter takes its own field's type.
          const past = (retention: DatasetRetention, cutoff: Date | null) => {
            if (cutoff === null || retention.retentionField === null) return '0';
            params.push(cutoffParameter(cutoff));
            const condition = pastRetentionSql(quoteIdent(retention.retentionField), `$${params.length}`);
            return `count(*) FILTER (WHERE ${condition})`;
          };
          const undated =
            next.retentionField === null
              ? '0'
              : `count(*) FILTER (WHERE ${undatedSql(quoteIdent(next.retentionField))})`;
          // One pass over the table, in one snapshot: the counts agree with each other.
          const [counts] = await manager.query<
            { records: number; destroyed: number; destroyed_by_current: number; kept_without_date: number }[]
          >(
            `SELECT count(*)::int AS records, (${past(next, nextCutoff)})::int AS destroyed,
                    (${past(current, currentCutoff)})::int AS destroyed_by_current,
                    (${undated})::int AS kept_without_date
               FROM ${recordTable(dataset.slug)}`,
            params,
          );
          return {
            datasetId: dataset.id,
            retentionDays: next.retentionDays,
            retentionField: next.retentionField,
            destroyed: counts.destroyed,
            destroyedByCurrent: counts.destroyed_by_current,
            keptWithoutDate: counts.kept_without_date,
            records: counts.records,
            cutoff: nextCutoff,
            asOf,
          };
        },
        { readOnly: true, isolation: 'REPEATABLE READ' },
      );
    } catch (error) {
      const e = error as { code?: unknown; driverError?: { code?: unknown } } | null;
      if ((e?.driverError?.code ?? e?.code) === QUERY_CANCELED) {
        // A refusal, not a failure; like the data plane's, it does not say where the limit stands.
        throw new BrokerError(
          ErrorCode.BAD_USER_INPUT,
          'Counting the records took too long, so the count was stopped; the retention can still be changed',
          { reason: 'LIMIT' },
        );
      }
      throw error;
    }
  }
}

/** The job's cutoff for a retention at `asOf`, or null for no retention. */
function cutoffOf(manager: EntityManager, retention: DatasetRetention, asOf: Date): Promise<Date> | null {
  return retention.retentionDays === null ? null : retentionCutoff(manager, retention.retentionDays, asOf);
}
