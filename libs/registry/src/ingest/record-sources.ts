import { parse } from 'csv-parse';
import { Readable } from 'node:stream';

/** One data row as a source delivers it, before validation. */
export type SourceRow =
  | { kind: 'object'; value: unknown }
  | { kind: 'cells'; cells: string[] }
  | { kind: 'error'; message: string; fatal: boolean };

/** A batch of records: CSV's header names the columns; the rows follow. */
export interface RecordSource {
  header?: string[];
  rows: AsyncIterable<SourceRow> | Iterable<SourceRow>;
}

export const MAX_LINE_BYTES = 1024 * 1024;

/** Raised by the byte stream when an upload passes the configured limit; ends the batch with 413. */
export class PayloadTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The upload is larger than the limit of ${limit} bytes`);
  }
}

/** Records given as already-parsed values (GraphQL `ingestRecords`). */
export function objectSource(records: unknown[]): RecordSource {
  return { rows: records.map((value): SourceRow => ({ kind: 'object', value })) };
}

/**
 * Newline-delimited JSON from a byte stream, one object per line; blank lines are skipped and do
 * not count as rows. Memory stays bounded by the longest line ({@link MAX_LINE_BYTES}).
 */
export function ndjsonSource(stream: AsyncIterable<Buffer>): RecordSource {
  return { rows: ndjsonRows(stream) };
}

async function* ndjsonRows(stream: AsyncIterable<Buffer>): AsyncGenerator<SourceRow> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  const finish = (line: Buffer): SourceRow | null => {
    if (overlong) {
      overlong = false;
      return { kind: 'error', message: `line is longer than ${MAX_LINE_BYTES} bytes`, fatal: false };
    }
    const text = line.toString('utf8').trim();
    if (!text) return null;
    try {
      return { kind: 'object', value: JSON.parse(text) as unknown };
    } catch {
      return { kind: 'error', message: 'line is not valid JSON', fatal: false };
    }
  };
  for await (const chunk of stream) {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = pending.length ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      const row = finish(line);
      if (row) yield row;
    }
    if (start < chunk.length && !overlong) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) {
        overlong = true;
        pending = [];
      } else pending.push(chunk.subarray(start));
    }
  }
  if (pending.length || overlong) {
    const row = finish(Buffer.concat(pending));
    if (row) yield row;
  }
}

/** Passes a byte stream through, failing with {@link PayloadTooLargeError} past `limit` bytes. */
export async function* limitBytes(stream: AsyncIterable<Buffer>, limit: number): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > limit) throw new PayloadTooLargeError(limit);
    yield chunk;
  }
}

/**
 * CSV with a header row of field names, parsed by csv-parse as it streams in. A malformed file
 * (an unclosed quote, say) ends the batch with a fatal error at the row where it happened.
 */
export async function csvSource(stream: AsyncIterable<Buffer>): Promise<RecordSource> {
  const parser = Readable.from(stream).pipe(
    parse({ bom: true, relax_column_count: true, skip_empty_lines: true, max_record_size: MAX_LINE_BYTES }),
  );
  const iterator = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  let first: IteratorResult<string[]>;
  try {
    first = await iterator.next();
  } catch (error) {
    if (error instanceof PayloadTooLargeError) throw error;
    return { header: [], rows: [{ kind: 'error', message: csvMessage(error), fatal: true }] };
  }
  const header = first.done ? [] : first.value.map((h) => h.trim());
  return { header, rows: csvRows(iterator) };
}

async function* csvRows(iterator: AsyncIterator<string[]>): AsyncGenerator<SourceRow> {
  for (;;) {
    let next: IteratorResult<string[]>;
    try {
      next = await iterator.next();
    } catch (error) {
      if (error instanceof PayloadTooLargeError) throw error;
      yield { kind: 'error', message: csvMessage(error), fatal: true };
      return;
    }
    if (next.done) return;
    yield { kind: 'cells', cells: next.value };
  }
}

function csvMessage(error: unknown): string {
  const code = (error as { code?: string }).code;
  switch (code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'malformed CSV: a quoted cell is never closed';
    case 'CSV_INVALID_CLOSING_QUOTE':
    case 'CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE':
      return 'malformed CSV: unexpected character after a closing quote';
    case 'CSV_MAX_RECORD_SIZE':
      return `malformed CSV: a row is longer than ${MAX_LINE_BYTES} bytes`;
    default:
      return 'malformed CSV';
  }
}
