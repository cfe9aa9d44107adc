import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { DataSource } from 'typeorm';
import type { RequestContext } from '@broker/auth';
import { LOGGER, MetricsService, pgPool, quoteIdent } from '@broker/core';
import { columnTypeOf, type FieldDefinition } from '../dataset/dataset-schema';
import { DatasetService, type WritableDataset } from '../dataset/dataset.service';
import { recordTable } from '../dataset/record-table';
import type { RecordSource } from './record-sources';
import { ErrorSink, MAX_REPORTED_ERRORS, type RowError, RowValidator } from './row-validator';

/** What an ingestion did. When `rejected` is above zero, nothing was written. */
export interface IngestReport {
  inserted: number;
  updated: number;
  rejected: number;
  errors: RowError[];
}

const STAGE = '_ingest_stage';
const FLUSH_CHARS = 256 * 1024;

/**
 * Streams a batch into a dataset, all or nothing: rows are validated and COPYed into a staging
 * table as they arrive, duplicate keys are found in SQL, and the batch is applied by key in one
 * transaction only when every row is valid. Memory stays bounded whatever the batch size.
 */
@Injectable()
export class IngestService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly datasets: DatasetService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Ingests a batch as the provider's steward. `open` is called once the caller is authorised. */
  async ingest(ctx: RequestContext, datasetId: string, open: () => Promise<RecordSource> | RecordSource) {
    const dataset = await this.datasets.requireWritable(ctx, datasetId);
    const source = await open();
    const client = await pgPool(this.dataSource).connect();
    let broken: unknown = null;
    try {
      await client.query('BEGIN');
      const report = await this.load(client, dataset, source);
      if (report.rejected > 0) {
        await client.query('ROLLBACK');
        this.metrics.rejectedBatches.inc({ reason: 'invalid_rows' });
      } else {
        await client.query('COMMIT');
        this.metrics.ingestedRecords.inc({ outcome: 'inserted' }, report.inserted);
        this.metrics.ingestedRecords.inc({ outcome: 'updated' }, report.updated);
      }
      this.logger.info(
        { datasetId, requestId: ctx.requestId, inserted: report.inserted, updated: report.updated, rejected: report.rejected },
        report.rejected ? 'ingestion refused' : 'ingestion applied',
      );
      return report;
    } catch (error) {
      broken = error;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // A connection whose COPY was cut off is not reused.
      client.release(broken ? true : undefined);
    }
  }

  private async load(client: PoolClient, dataset: WritableDataset, source: RecordSource): Promise<IngestReport> {
    const { fields, keyField, slug } = dataset;
    const table = recordTable(slug);
    const columns = fields.map((f) => quoteIdent(f.name));
    // Ingestions of one dataset queue behind each other; queries keep reading meanwhile.
    await client.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
    await client.query(
      `CREATE TEMP TABLE ${STAGE} (_row integer NOT NULL, ${fields
        .map((f) => `${quoteIdent(f.name)} ${columnTypeOf(f.type)}`)
        .join(', ')}) ON COMMIT DROP`,
    );

    const sink = new ErrorSink();
    const validator = new RowValidator(fields);
    const { mapping, columnErrors } = mapHeader(source.header, fields);
    const copy = client.query(copyFrom(`COPY ${STAGE} (_row, ${columns.join(', ')}) FROM STDIN`));
    let copyError: unknown = null;
    copy.on('error', (e) => (copyError = e));

    let row = 0;
    let buffer = '';
    try {
      for await (const item of source.rows) {
        let line: string | null = null;
        if (item.kind === 'error') {
          sink.add(row, null, item.message);
          if (item.fatal) break;
        } else if (item.kind === 'object') {
          line = validator.fromObject(item.value, row, sink);
        } else {
          line = validator.fromCells(item.cells, mapping, row, sink, columnErrors);
        }
        row++;
        if (line !== null) buffer += line;
        if (buffer.length >= FLUSH_CHARS) {
          if (copyError) throw copyError;
          const more = copy.write(buffer);
          buffer = '';
          if (!more) await once(copy, 'drain');
        }
      }
    } catch (error) {
      copy.destroy(error as Error);
      throw error;
    }
    copy.end(buffer);
    await finished(copy);
    if (copyError) throw copyError;

    const key = quoteIdent(keyField);
    const duplicates: { _row: number; first_row: number }[] = (
      await client.query(
        `SELECT _row, first_row FROM (
           SELECT _row, min(_row) OVER (PARTITION BY ${key}) AS first_row FROM ${STAGE}
         ) d WHERE _row <> first_row ORDER BY _row LIMIT ${MAX_REPORTED_ERRORS}`,
      )
    ).rows;
    if (duplicates.length) {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) - count(DISTINCT ${key}) AS n FROM ${STAGE}`,
      );
      sink.rejectedRows += Number(rows[0].n);
    }
    if (sink.rejectedRows > 0) {
      const errors = [
        ...sink.errors,
        ...duplicates.map((d) => ({
          row: d._row,
          field: keyField,
          message: `duplicate record key: row ${d.first_row} has the same ${keyField}`,
        })),
      ]
        .sort((a, b) => a.row - b.row)
        .slice(0, MAX_REPORTED_ERRORS);
      return { inserted: 0, updated: 0, rejected: sink.rejectedRows, errors };
    }

    const cols = columns.join(', ');
    const staged = columns.map((c) => `s.${c}`).join(', ');
    const { rows: existing } = await client.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table}) AS any`);
    if (!existing[0].any) {
      const inserted = await client.query(`INSERT INTO ${table} (${cols}) SELECT ${staged} FROM ${STAGE} s`);
      return { inserted: inserted.rowCount ?? 0, updated: 0, rejected: 0, errors: [] };
    }
    await client.query(`ANALYZE ${STAGE}`);
    const nonKey = columns.filter((c) => c !== key);
    const updated = await client.query(
      `UPDATE ${table} AS t SET ${[...nonKey.map((c) => `${c} = s.${c}`), '_ingested_at = now()'].join(', ')}
         FROM ${STAGE} s WHERE t.${key} = s.${key}`,
    );
    const inserted = await client.query(
      `INSERT INTO ${table} (${cols}) SELECT ${staged} FROM ${STAGE} s
        WHERE NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.${key} = s.${key})`,
    );
    return { inserted: inserted.rowCount ?? 0, updated: updated.rowCount ?? 0, rejected: 0, errors: [] };
  }
}

/** Maps CSV header columns to field positions; unknown or repeated columns become errors on every row. */
function mapHeader(header: string[] | undefined, fields: FieldDefinition[]) {
  const columnErrors: { field: string; message: string }[] = [];
  if (!header) return { mapping: [], columnErrors };
  const index = new Map(fields.map((f, i) => [f.name, i]));
  const seen = new Set<string>();
  const mapping = header.map((name) => {
    const i = index.get(name);
    if (i === undefined) {
      columnErrors.push({ field: name.slice(0, 100), message: 'unknown field (CSV header)' });
      return -1;
    }
    if (seen.has(name)) {
      columnErrors.push({ field: name, message: 'appears twice in the CSV header' });
      return -1;
    }
    seen.add(name);
    return i;
  });
  return { mapping, columnErrors };
}
