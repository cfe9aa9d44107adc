import { AuditAction, AuditService, auditActor } from '@broker/audit';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { type CopyStreamQuery, from as copyFrom } from 'pg-copy-streams';
import type { Logger } from 'pino';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { RequestContext } from '@broker/auth';
import { Database, LOGGER, MetricsService, quoteIdent } from '@broker/core';
import { RECORDS_INGESTED_HOOK, type RecordsIngestedHook } from '@broker/jobs';
import { columnTypeOf, type FieldDefinition } from '../dataset/dataset-schema';
import { DatasetService, type WritableDataset } from '../dataset/dataset.service';
import { NEW_RID_SQL, recordTable } from '../dataset/record-table';
import { HashLookupIndex, type HashLookupUpkeep, keepHashLookups } from '../dataset/hash-lookup';
import { keepPersonKeys } from '../dataset/person-key-upkeep';
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
const KEYS = '_ingest_keys';
/** COPY text gathered before it is written to PostgreSQL. */
const FLUSH_BYTES = 256 * 1024;
/** Rows gathered as a string before they are copied out as bytes. */
const PENDING_CHARS = 16 * 1024;
/** Keys (and row numbers) of a direct load held in memory before they go to a temporary table. */
const KEYS_IN_MEMORY_BYTES = 16 * 1024 * 1024;
const UNIQUE_VIOLATION = '23505';

/** Where valid rows go as they are read. `flush` is awaited when `size` passes its threshold. */
interface RowWriter {
  /** Bytes of COPY text held so far. */
  readonly size: number;
  readonly threshold: number;
  /** Called once before the first row. */
  start(): Promise<void>;
  add(row: number, line: string, key: string): void;
  /**
   * Holds the key of a row refused for other errors, so that a later row repeating it is reported
   * too (the batch is refused already: nothing of it is written).
   */
  addKey(row: number, key: string): void;
  flush(): Promise<void>;
  /** Writes what is held and waits for PostgreSQL to take it all. */
  end(): Promise<void>;
  /** Stops writing after a failure; the caller rolls back next. */
  abort(error: Error): void;
}

/** A refused batch's lookup tables: it changes nothing, and its transaction rolls back. */
const UNCHANGED: Pick<HashLookupUpkeep, 'dropped'> = { dropped: false };

/**
 * Streams a batch into a dataset, all or nothing, in one transaction: the batch is applied only when
 * every row is valid and no two rows share a key, else nothing is written and every problem is
 * reported. Memory stays bounded whatever the batch size.
 *
 * Into a table with records, rows are COPYed into a staging table as they arrive, duplicate keys
 * are found in SQL, and the batch is applied by key (update, then insert). Into an empty table, rows
 * are COPYed straight into it, as `psql \copy` would, and only their keys and row numbers are
 * staged: the primary key refuses a duplicate as it goes in, and the staged keys then say which
 * rows to report. Staging every row and inserting it again took twice the database's time.
 */
@Injectable()
export class IngestService {
  constructor(
    private readonly db: Database,
    private readonly datasets: DatasetService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly audit: AuditService,
    private readonly hashes: HashLookupIndex,
    @Optional() @Inject(RECORDS_INGESTED_HOOK) private readonly ingested?: RecordsIngestedHook,
  ) {}

  /** Ingests a batch as the provider's steward. `open` is called once the caller is authorised. */
  async ingest(ctx: RequestContext, datasetId: string, open: () => Promise<RecordSource> | RecordSource) {
    const dataset = await this.datasets.requireWritable(ctx, datasetId);
    const source = await open();
    const started = Date.now();
    const tx = await this.db.begin();
    try {
      const { report, mode, loadedAt, lookups } = await this.load(tx.client, dataset, source);
      if (report.rejected > 0) {
        await tx.rollback();
        this.metrics.rejectedBatches.inc({ reason: 'invalid_rows' });
      } else {
        // Last before COMMIT: the chain's lock is held only for the commit itself.
        await this.audit.appendOnClient(tx.client, {
          ...auditActor(ctx),
          action: AuditAction.RECORDS_INGESTED,
          decision: 'ALLOW',
          datasetId,
          rowCount: report.inserted + report.updated,
          reason: `${report.inserted} inserted, ${report.updated} updated`,
        });
        await tx.commit();
        // The lookup tables of HASH names were kept up to date with the change, or dropped.
        if (lookups.dropped) this.hashes.forget(datasetId);
        this.metrics.ingestedRecords.inc({ outcome: 'inserted' }, report.inserted);
        this.metrics.ingestedRecords.inc({ outcome: 'updated' }, report.updated);
        // Linkage schedules a (debounced) run; the hook never throws and never waits.
        if (report.inserted + report.updated > 0) this.ingested?.recordsIngested(datasetId);
      }
      this.logger.info(
        {
          datasetId,
          requestId: ctx.requestId,
          inserted: report.inserted,
          updated: report.updated,
          rejected: report.rejected,
          mode,
          // Reading the upload (and COPYing as it arrives), then applying it: where the time went.
          readMs: loadedAt - started,
          applyMs: Date.now() - loadedAt,
        },
        report.rejected ? 'ingestion refused' : 'ingestion applied',
      );
      return report;
    } catch (error) {
      // A connection whose COPY was cut off is not reused: the transaction dies with it.
      tx.abandon(error);
      throw error;
    }
  }

  private async load(
    client: PoolClient,
    dataset: WritableDataset & { id: string; subjectField?: string | null },
    source: RecordSource,
  ) {
    const { fields, keyField, slug } = dataset;
    const table = recordTable(slug);
    const key = quoteIdent(keyField);
    const columns = fields.map((f) => quoteIdent(f.name));
    const typed = (f: FieldDefinition) => `${quoteIdent(f.name)} ${columnTypeOf(f.type)}`;
    // Ingestions of one dataset queue behind each other; queries keep reading meanwhile.
    await client.query(`LOCK TABLE ${table} IN SHARE ROW EXCLUSIVE MODE`);
    // Under the lock, an empty table stays empty until this batch is applied.
    const { rows } = await client.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table}) AS any`);
    // Each record is written with its subject's consent (`_consent`, migration record-consent), as the
    // consent in force is now: no consent changes until this batch commits, and then it sees it. A
    // dataset somebody consents to goes through the staging table, whose insert can join the consent
    // (a COPY cannot, and setting it afterwards would write every such record twice).
    const consented = dataset.subjectField
      ? (
          await client.query<{ consented: boolean }>(`SELECT record_consent_hold($1) AS consented`, [
            dataset.id,
          ])
        ).rows[0].consented
      : false;
    const mode = rows[0].any || consented ? 'staged' : 'direct';
    const staging = mode === 'staged' ? STAGE : KEYS;
    const stagedFields = mode === 'staged' ? fields : fields.filter((f) => f.name === keyField);
    await client.query(
      `CREATE TEMP TABLE ${staging} (_row integer NOT NULL, ${stagedFields.map(typed).join(', ')}) ON COMMIT DROP`,
    );

    const sink = new ErrorSink();
    const validator = new RowValidator(fields, keyField);
    const { mapping, columnErrors } = mapHeader(source.header, fields);
    const direct =
      mode === 'direct'
        ? new DirectWriter(
            client,
            `COPY ${KEYS} (_row, ${key}) FROM STDIN`,
            `COPY ${table} (${columns.join(', ')}) FROM STDIN`,
            sink,
          )
        : null;
    const writer =
      direct ??
      new StagingWriter(
        client,
        `COPY ${STAGE} (_row, ${columns.join(', ')}) FROM STDIN`,
        fields.length,
        fields.findIndex((f) => f.name === keyField),
      );

    let row = 0;
    try {
      await writer.start();
      read: for await (const group of source.groups) {
        for (const item of group) {
          let line: string | null = null;
          validator.keyValid = false;
          if (item.kind === 'error') {
            sink.add(row, null, item.message);
            if (item.fatal) break read;
          } else if (item.kind === 'object') {
            line = validator.fromObject(item.value, row, sink);
          } else {
            line = validator.fromCells(item.cells, mapping, row, sink, columnErrors);
          }
          if (line !== null) writer.add(row, line, validator.key);
          else if (validator.keyValid) writer.addKey(row, validator.key);
          row++;
        }
        if (writer.size >= writer.threshold) await writer.flush();
      }
      // A header's unknown or repeated columns are errors of every row: of a file with none, they are
      // reported at row 0, as a file that fails before its first row is, and nothing is written.
      if (row === 0) for (const e of columnErrors) sink.add(0, e.field, e.message);
      await writer.end();
    } catch (error) {
      writer.abort(error as Error);
      throw error;
    }
    const loadedAt = Date.now();

    if (direct) {
      if (sink.rejectedRows === 0 && !direct.conflict) {
        const lookups = await keepHashLookups(client, dataset, direct.copied);
        const personKeys = await keepPersonKeys(client, dataset, direct.copied);
        // The table was empty under the lock: every record in it is this batch's.
        await lookups.afterChange(null);
        await personKeys.afterChange(null);
        return {
          report: { inserted: direct.copied, updated: 0, rejected: 0, errors: [] },
          mode,
          loadedAt,
          lookups,
        };
      }
      const report = await this.refusal(client, KEYS, keyField, sink);
      // The key was violated, yet no two rows share one: not this batch's doing.
      if (report.rejected === 0 && direct.conflict) throw direct.conflict;
      return { report, mode, loadedAt, lookups: UNCHANGED };
    }

    const refused = await this.refusal(client, STAGE, keyField, sink);
    if (refused.rejected > 0) return { report: refused, mode, loadedAt, lookups: UNCHANGED };
    await client.query(`ANALYZE ${STAGE}`);
    // A record moved to another subject: the releases of it so far stay its former subject's (kept
    // as destroyed records are, by subject and row id), and it takes a new row id, so that the new
    // subject's report lists only what is released from now on.
    const subject = dataset.subjectField ? quoteIdent(dataset.subjectField) : null;
    const moved = subject ? `t.${subject} IS DISTINCT FROM s.${subject}` : undefined;
    // The lookup tables of HASH names follow the change, in its transaction and under its lock: a
    // moved record's entries under its old row id go, and it is filed under its new one.
    const lookups = await keepHashLookups(client, dataset, row);
    await lookups.beforeUpdate(STAGE, moved);
    // And the personKey lookup tables, which file their grant's population only: a record that
    // enters or leaves it is filed or taken out once the change is applied.
    const personKeys = await keepPersonKeys(client, dataset, row);
    const nonKey = columns.filter((c) => c !== key);
    const sets = [...nonKey.map((c) => `${c} = s.${c}`), '_ingested_at = now()'];
    // The consent of each record's subject (see record_consent_hold above), where anybody consents.
    const consent =
      consented && subject
        ? {
            join: ` LEFT JOIN record_consent_of($1::uuid) c ON c.subject_id = s.${subject}::text`,
            params: [dataset.id],
          }
        : { join: '', params: [] };
    if (consent.join) sets.push('"_consent" = c.purposes');
    if (subject && moved) {
      await client.query(
        `INSERT INTO destroyed_record (dataset_id, subject_id, rid)
         SELECT $1, t.${subject}::text, t."_rid" FROM ${table} t JOIN ${STAGE} s ON t.${key} = s.${key}
          WHERE t.${subject} IS NOT NULL AND ${moved}
         ON CONFLICT DO NOTHING`,
        [dataset.id],
      );
      sets.push(`"_rid" = CASE WHEN ${moved} THEN ${NEW_RID_SQL} ELSE t."_rid" END`);
    }
    const updated = await client.query(
      `UPDATE ${table} AS t SET ${sets.join(', ')} FROM ${STAGE} s${consent.join} WHERE t.${key} = s.${key}`,
      consent.params,
    );
    const insertColumns = consent.join ? [...columns, '"_consent"'] : columns;
    const values = [...columns.map((c) => `s.${c}`), ...(consent.join ? ['c.purposes'] : [])];
    const inserted = await client.query(
      `INSERT INTO ${table} (${insertColumns.join(', ')}) SELECT ${values.join(', ')} FROM ${STAGE} s${consent.join}
        WHERE NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.${key} = s.${key})`,
      consent.params,
    );
    await lookups.afterChange(STAGE);
    await personKeys.afterChange(STAGE);
    const report = {
      inserted: inserted.rowCount ?? 0,
      updated: updated.rowCount ?? 0,
      rejected: 0,
      errors: [],
    };
    return { report, mode, loadedAt, lookups };
  }

  /** The report of a refused batch: the rows' errors and every repeated key, on its later rows. */
  private async refusal(
    client: PoolClient,
    staged: string,
    keyField: string,
    sink: ErrorSink,
  ): Promise<IngestReport> {
    const key = quoteIdent(keyField);
    // A row refused for other errors is held by its key alone, numbered -(row + 1) (addKey).
    const repeats = `SELECT n AS row_number, first_row, valid FROM (
         SELECT CASE WHEN _row < 0 THEN -_row - 1 ELSE _row END AS n, _row >= 0 AS valid,
                min(CASE WHEN _row < 0 THEN -_row - 1 ELSE _row END) OVER (PARTITION BY ${key}) AS first_row
           FROM ${staged}
       ) d WHERE n <> first_row`;
    const { rows: duplicates } = await client.query<{ row_number: number; first_row: number }>(
      `${repeats} ORDER BY row_number LIMIT ${MAX_REPORTED_ERRORS}`,
    );
    let rejected = sink.rejectedRows;
    if (duplicates.length) {
      // Rows refused for other errors are counted already.
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) FILTER (WHERE valid) AS n FROM (${repeats}) r`,
      );
      rejected += Number(rows[0].n);
    }
    const errors = [
      ...sink.errors,
      ...duplicates.map((d) => ({
        row: d.row_number,
        field: keyField,
        message: `duplicate record key: row ${d.first_row} has the same ${keyField}`,
      })),
    ]
      .sort((a, b) => a.row - b.row)
      .slice(0, MAX_REPORTED_ERRORS);
    return { inserted: 0, updated: 0, rejected, errors };
  }
}

/**
 * COPY text as UTF-8 bytes. Rows are gathered into a short string and copied out as bytes every
 * {@link PENDING_CHARS}: a long string built row by row would be a rope of small strings that
 * outlives the young generation (collecting those took longer than parsing the CSV), and a copy per
 * row costs a native call per row.
 */
class CopyBuffer {
  private full: Buffer[] = [];
  private current: Buffer;
  private used = 0;
  private bytes = 0;
  private pending = '';

  constructor(private readonly capacity: number) {
    this.current = Buffer.allocUnsafe(capacity);
  }

  /** About the bytes held (the pending text is counted by its length). */
  get size() {
    return this.bytes + this.pending.length;
  }

  append(text: string) {
    this.pending += text;
    if (this.pending.length >= PENDING_CHARS) this.settle();
  }

  /** Hands over what is held and starts afresh. */
  take(): Buffer[] {
    this.settle();
    const taken = this.used > 0 ? [...this.full, this.current.subarray(0, this.used)] : this.full;
    this.full = [];
    this.current = Buffer.allocUnsafe(this.capacity);
    this.used = 0;
    this.bytes = 0;
    return taken;
  }

  private settle() {
    const text = this.pending;
    this.pending = '';
    // UTF-8 takes at most three bytes per UTF-16 unit.
    if (this.used + text.length * 3 > this.current.length) {
      if (this.used > 0) this.full.push(this.current.subarray(0, this.used));
      this.current = Buffer.allocUnsafe(Math.max(this.capacity, text.length * 3));
      this.used = 0;
    }
    const written = this.current.write(text, this.used);
    this.used += written;
    this.bytes += written;
  }
}

/** Stages whole rows, with their numbers, through one COPY that streams as rows are read. */
class StagingWriter implements RowWriter {
  readonly threshold = FLUSH_BYTES;
  private readonly buffer = new CopyBuffer(FLUSH_BYTES * 2);
  private readonly copy: CopyStreamQuery;
  private error: Error | null = null;

  constructor(
    client: PoolClient,
    sql: string,
    private readonly width: number,
    private readonly keyIndex: number,
  ) {
    this.copy = client.query(copyFrom(sql));
    this.copy.on('error', (e: Error) => (this.error = e));
  }

  get size() {
    return this.buffer.size;
  }

  async start() {}

  add(row: number, line: string) {
    this.buffer.append(row + '\t' + line);
  }

  addKey(row: number, key: string) {
    const cells = new Array<string>(this.width).fill('\\N');
    cells[this.keyIndex] = key;
    this.buffer.append(-(row + 1) + '\t' + cells.join('\t') + '\n');
  }

  async flush() {
    if (this.error) throw this.error;
    let more = true;
    for (const piece of this.buffer.take()) more = this.copy.write(piece);
    if (!more) await once(this.copy, 'drain');
  }

  async end() {
    await this.flush();
    this.copy.end();
    await finished(this.copy);
    if (this.error) throw this.error;
  }

  abort(error: Error) {
    this.copy.destroy(error);
  }
}

/**
 * COPYs rows straight into an empty record table, in one statement that streams as rows are read,
 * as `psql \copy` would. The rows' keys and numbers are held aside, in memory up to
 * {@link KEYS_IN_MEMORY_BYTES} and in a temporary table past that; they are needed only when the batch
 * is refused, to find the rows that repeat a key. The COPY runs under a savepoint, so that the
 * primary key's refusal of a duplicate undoes the rows but leaves the keys to report it by; once the
 * batch is known to be refused, rows stop going to the table.
 */
class DirectWriter implements RowWriter {
  readonly threshold = FLUSH_BYTES;
  /** Rows COPYed into the table. */
  copied = 0;
  /** The primary key's refusal of a row, once it came. */
  conflict: Error | null = null;
  private readonly rows = new CopyBuffer(FLUSH_BYTES * 2);
  private readonly keys = new CopyBuffer(1024 * 1024);
  private copy: CopyStreamQuery | null = null;
  private error: Error | null = null;

  constructor(
    private readonly client: PoolClient,
    private readonly keysSql: string,
    private readonly rowsSql: string,
    private readonly sink: ErrorSink,
  ) {}

  get size() {
    return this.rows.size;
  }

  async start() {
    await this.client.query('SAVEPOINT ingest_rows');
    this.copy = this.client.query(copyFrom(this.rowsSql));
    this.error = null;
    // The first error is the cause; writes that raced it fail too.
    this.copy.on('error', (e: Error) => (this.error ??= e));
  }

  add(row: number, line: string, key: string) {
    if (this.copy) this.rows.append(line);
    this.keys.append(row + '\t' + key + '\n');
  }

  addKey(row: number, key: string) {
    this.keys.append(-(row + 1) + '\t' + key + '\n');
  }

  async flush() {
    const pieces = this.rows.take();
    if (this.copy && !this.error && this.sink.rejectedRows === 0) {
      let more = true;
      for (const piece of pieces) more = this.copy.write(piece);
      // Rejects on the COPY's error, which closeRows() then reads.
      if (!more) await once(this.copy, 'drain').catch(() => undefined);
    }
    if (this.copy && (this.error || this.sink.rejectedRows > 0)) await this.closeRows();
    if (this.keys.size >= KEYS_IN_MEMORY_BYTES) {
      const copying = this.copy !== null;
      if (copying) await this.closeRows();
      await copy(this.client, this.keysSql, this.keys.take());
      if (copying && !this.conflict) await this.start();
    }
  }

  async end() {
    await this.flush();
    if (this.copy) await this.closeRows();
    if ((this.conflict || this.sink.rejectedRows > 0) && this.keys.size) {
      await copy(this.client, this.keysSql, this.keys.take());
    }
  }

  abort(error: Error) {
    this.copy?.destroy(error);
  }

  /** Ends the COPY of rows; a duplicate key is noted and its rows undone, any other error thrown. */
  private async closeRows() {
    const stream = this.copy!;
    this.copy = null;
    if (!this.error) stream.end();
    await finished(stream).catch(() => undefined);
    if (!this.error) {
      this.copied += stream.rowCount;
      await this.client.query('RELEASE SAVEPOINT ingest_rows');
      return;
    }
    if ((this.error as Error & { code?: string }).code !== UNIQUE_VIOLATION) throw this.error;
    this.conflict = this.error;
    await this.client.query('ROLLBACK TO SAVEPOINT ingest_rows');
  }
}

/** Runs a COPY FROM STDIN of the given text. */
async function copy(client: PoolClient, sql: string, text: Buffer[]) {
  const stream = client.query(copyFrom(sql));
  for (const piece of text) stream.write(piece);
  stream.end();
  await finished(stream);
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
