import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';

/** One data row as a source delivers it, before validation. */
export type SourceRow =
  | { kind: 'object'; value: unknown }
  | { kind: 'cells'; cells: string[] }
  | { kind: 'error'; message: string; fatal: boolean };

/**
 * A batch of records: CSV's header names the columns; the rows follow in groups, one per chunk of
 * the upload, so that a million-row batch costs thousands of awaits rather than a million.
 */
export interface RecordSource {
  header?: string[];
  groups: AsyncIterable<SourceRow[]> | Iterable<SourceRow[]>;
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
  return { groups: [records.map((value): SourceRow => ({ kind: 'object', value }))] };
}

/**
 * Newline-delimited JSON from a byte stream, one object per line; blank lines are skipped and do
 * not count as rows. Memory stays bounded by the longest line ({@link MAX_LINE_BYTES}).
 */
export function ndjsonSource(stream: AsyncIterable<Buffer>): RecordSource {
  return { groups: ndjsonRows(stream) };
}

async function* ndjsonRows(stream: AsyncIterable<Buffer>): AsyncGenerator<SourceRow[]> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let overlong = false;
  const finish = (line: Buffer): SourceRow | null => {
    if (overlong) {
      overlong = false;
      return { kind: 'error', message: `line is longer than ${MAX_LINE_BYTES} bytes`, fatal: false };
    }
    if (!isUtf8(line)) return { kind: 'error', message: 'line is not valid UTF-8', fatal: false };
    const text = line.toString('utf8').trim();
    if (!text) return null;
    let value: unknown;
    try {
      value = JSON.parse(text) as unknown;
    } catch {
      return { kind: 'error', message: 'line is not valid JSON', fatal: false };
    }
    const twice = repeatedKey(text, value);
    if (twice !== null) {
      return {
        kind: 'error',
        message: `field ${JSON.stringify(twice.slice(0, 100))} appears twice`,
        fatal: false,
      };
    }
    return { kind: 'object', value };
  };
  for await (const chunk of stream) {
    const group: SourceRow[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const line = pending.length ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      start = nl + 1;
      const row = finish(line);
      if (row) group.push(row);
    }
    if (start < chunk.length && !overlong) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) {
        overlong = true;
        pending = [];
      } else pending.push(chunk.subarray(start));
    }
    if (group.length) yield group;
  }
  if (pending.length || overlong) {
    const row = finish(Buffer.concat(pending));
    if (row) yield [row];
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

/** A JSON string followed by a colon: an object's key (a string value is followed by `,`, `]` or `}`). */
const JSON_KEY = /"((?:[^"\\]|\\.)*)"\s*:/g;

/**
 * The first key that the object on a line of valid JSON, `text`, names twice, or null. JSON.parse
 * keeps the last of them silently; a record must say each field once, as a CSV header must. Keys of
 * nested objects count too (a record holds none: it is refused for them anyway).
 */
export function repeatedKey(text: string, value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const seen = new Set<string>();
  for (const [, raw] of text.matchAll(JSON_KEY)) {
    const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
    if (seen.has(key)) return key;
    seen.add(key);
  }
  return null;
}

/**
 * CSV with a header row of field names, parsed as it streams in. A malformed file (an unclosed
 * quote, say) ends the batch with a fatal error at the row where it happened.
 */
export async function csvSource(stream: AsyncIterable<Buffer>): Promise<RecordSource> {
  const records = csvRecords(stream);
  for (;;) {
    const next = await records.next();
    if (next.done) return { header: [], groups: [] };
    if (next.value instanceof CsvSyntaxError) {
      return { header: [], groups: [[{ kind: 'error', message: csvMessage(next.value), fatal: true }]] };
    }
    if (next.value.length === 0) continue;
    const [header, ...first] = next.value;
    return { header: header.map((h) => h.trim()), groups: csvGroups(first, records) };
  }
}

async function* csvGroups(
  first: string[][],
  records: AsyncGenerator<string[][] | CsvSyntaxError>,
): AsyncGenerator<SourceRow[]> {
  const group = (cells: string[][]) => cells.map((c): SourceRow => ({ kind: 'cells', cells: c }));
  if (first.length) yield group(first);
  for await (const value of records) {
    if (value instanceof CsvSyntaxError) {
      yield [{ kind: 'error', message: csvMessage(value), fatal: true }];
      return;
    }
    yield group(value);
  }
}

/** The records of each chunk of a CSV stream; a syntax error comes after the records before it, and ends it. */
async function* csvRecords(stream: AsyncIterable<Buffer>): AsyncGenerator<string[][] | CsvSyntaxError> {
  const parser = new CsvParser();
  const parse = function* (chunk: Buffer | null) {
    const out: string[][] = [];
    try {
      if (chunk) parser.write(chunk, out);
      else parser.end(out);
    } catch (error) {
      if (!(error instanceof CsvSyntaxError)) throw error;
      if (out.length) yield out;
      yield error;
      return true;
    }
    if (out.length) yield out;
    return false;
  };
  for await (const chunk of stream) {
    if (yield* parse(chunk)) return;
  }
  yield* parse(null);
}

type CsvErrorCode =
  | 'CSV_QUOTE_NOT_CLOSED'
  | 'CSV_INVALID_CLOSING_QUOTE'
  | 'INVALID_OPENING_QUOTE'
  | 'CSV_MAX_RECORD_SIZE'
  | 'CSV_NOT_UNICODE';

class CsvSyntaxError extends Error {
  constructor(readonly code: CsvErrorCode) {
    super(code);
  }
}

const QUOTE = 34;
const COMMA = 44;
const CR = 13;
const LF = 10;
/**
 * A row whose cells hold less than MAX_LINE_BYTES can only pass this many characters by being
 * almost all commas and quotes; it is refused as too long rather than buffered without end.
 */
const MAX_PENDING_CHARS = 4 * MAX_LINE_BYTES;

/**
 * A streaming CSV parser that reads what csv-parse read with `bom`, `relax_column_count`,
 * `skip_empty_lines` and `max_record_size: MAX_LINE_BYTES`, and refuses what it refused: RFC 4180
 * quoting with `""` as the escape; the record delimiter is the first of CRLF, LF or CR met outside
 * quotes, and only it ends records thereafter; a UTF-8 or UTF-16LE byte-order mark sets the
 * encoding. It exists because csv-parse walks every byte in JavaScript, which made it the slowest
 * part of an upload; here a line without quotes is cut with indexOf and split.
 */
class CsvParser {
  private decoder: TextDecoder | null = null;
  private encoding: 'utf-8' | 'utf-16le' = 'utf-8';
  /** The first bytes, held until a byte-order mark can be told. */
  private head: Buffer | null = null;
  /** Decoded text not yet made into records: the start of the next one. */
  private text = '';
  /** The record delimiter, once found. */
  private eol = '';
  private retryAt = 0;

  write(chunk: Buffer, out: string[][]) {
    if (this.decoder) this.text += this.decode(chunk);
    else {
      this.head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
      if (this.head.length < 3) return;
      this.startDecoding();
    }
    this.parse(false, out);
  }

  end(out: string[][]) {
    if (!this.decoder) this.startDecoding();
    this.text += this.decode(null);
    this.parse(true, out);
  }

  /**
   * The text of the next bytes (null: the end), or CSV_NOT_UNICODE: bytes that are not valid in the
   * encoding are refused, never replaced (a name read as M\uFFFDller is no longer the record sent).
   */
  private decode(bytes: Buffer | null): string {
    try {
      return bytes ? this.decoder!.decode(bytes, { stream: true }) : this.decoder!.decode();
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_ENCODING_INVALID_ENCODED_DATA') {
        throw new CsvSyntaxError('CSV_NOT_UNICODE');
      }
      throw error;
    }
  }

  private startDecoding() {
    let bytes = this.head ?? Buffer.alloc(0);
    if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
      bytes = bytes.subarray(3);
    else if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xfe) {
      bytes = bytes.subarray(2);
      this.encoding = 'utf-16le';
    }
    this.head = null;
    this.decoder = new TextDecoder(this.encoding, { fatal: true, ignoreBOM: true });
    this.text = this.decode(bytes);
  }

  private parse(end: boolean, out: string[][]) {
    // A long partial row is read again only once the text has doubled, so that reading it stays
    // linear in its length however thinly it arrives.
    if (!end && this.text.length < this.retryAt) return;
    const text = this.text;
    const n = text.length;
    let p = 0;
    let nextQuote = -1;
    while (p < n) {
      const eol = this.eol;
      if (eol) {
        if (nextQuote < p) {
          nextQuote = text.indexOf('"', p);
          if (nextQuote < 0) nextQuote = n;
        }
        let stop = text.indexOf(eol, p);
        if (stop < 0) {
          if (!end) break;
          stop = n;
        }
        // The common row: no quotes, short enough that its size cannot matter.
        if (nextQuote >= stop && (stop - p) * 3 <= MAX_LINE_BYTES) {
          if (stop > p) out.push(text.slice(p, stop).split(','));
          p = stop + eol.length;
          continue;
        }
      }
      const next = this.record(text, p, end, out);
      if (next < 0) break;
      p = next;
    }
    this.text = p >= n ? '' : text.slice(p);
    if (end) return;
    this.retryAt = 2 * this.text.length;
    // A partial row is kept only while it could still be accepted.
    if (this.text.length * 3 > MAX_LINE_BYTES) this.record(this.text, 0, false, out);
  }

  /**
   * Reads the record at `p` character by character, skipping empty lines before it; returns where
   * the next one starts, or -1 when the text ends first and more is coming.
   */
  private record(text: string, p: number, end: boolean, out: string[][]): number {
    const n = text.length;
    const cells: string[] = [];
    let cellChars = 0;
    let field = '';
    let quoting = false;
    let wasQuoting = false;
    let i = p;
    const more = () => {
      this.checkSize(cellChars, field);
      if (n - p > MAX_PENDING_CHARS) throw new CsvSyntaxError('CSV_MAX_RECORD_SIZE');
      return -1;
    };
    for (;;) {
      if (i >= n) {
        if (!end) return more();
        this.checkSize(cellChars, field);
        if (quoting) throw new CsvSyntaxError('CSV_QUOTE_NOT_CLOSED');
        if (wasQuoting || cells.length || field.length) {
          cells.push(field);
          out.push(cells);
        }
        return n;
      }
      const c = text.charCodeAt(i);
      if (quoting) {
        if (c !== QUOTE) {
          let q = text.indexOf('"', i);
          if (q < 0) q = n;
          field += text.slice(i, q);
          i = q;
          continue;
        }
        if (i + 1 >= n && !end) return more();
        const after = i + 1 < n ? text.charCodeAt(i + 1) : -1;
        if (after === QUOTE) {
          field += '"';
          i += 2;
          continue;
        }
        // A closing quote is followed by the end, a comma, a record delimiter or (as csv-parse had it) NUL.
        let closes = after === -1 || after === COMMA || after === 0;
        if (!closes) {
          const found = this.delimiterAt(text, i + 1, end);
          if (found < 0) return more();
          closes = found > 0;
        }
        if (!closes) {
          this.checkSize(cellChars, field);
          throw new CsvSyntaxError('CSV_INVALID_CLOSING_QUOTE');
        }
        quoting = false;
        wasQuoting = true;
        i++;
        continue;
      }
      if (c === QUOTE) {
        if (field.length) {
          this.checkSize(cellChars, field);
          throw new CsvSyntaxError('INVALID_OPENING_QUOTE');
        }
        quoting = true;
        i++;
        continue;
      }
      if (c === CR || c === LF) {
        const length = this.delimiterAt(text, i, end);
        if (length < 0) return more();
        if (length > 0) {
          if (!wasQuoting && cells.length === 0 && field.length === 0) {
            // An empty line: skipped, and not a row.
            i += length;
            p = i;
            continue;
          }
          this.checkSize(cellChars, field);
          cells.push(field);
          out.push(cells);
          return i + length;
        }
      }
      if (c === COMMA) {
        this.checkSize(cellChars, field);
        cells.push(field);
        cellChars += field.length;
        field = '';
        wasQuoting = false;
        i++;
        continue;
      }
      let j = i + 1;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d === COMMA || d === QUOTE || d === CR || d === LF) break;
      }
      field += text.slice(i, j);
      i = j;
    }
  }

  /**
   * The length of the record delimiter at `i` (0 if there is none), discovering it on first use;
   * -1 when the text ends too soon to tell CR from CRLF.
   */
  private delimiterAt(text: string, i: number, end: boolean): number {
    const c = text.charCodeAt(i);
    if (c !== CR && c !== LF) return 0;
    if (c === CR && i + 1 >= text.length && !end) return -1;
    if (!this.eol) this.eol = c === LF ? '\n' : text.charCodeAt(i + 1) === LF ? '\r\n' : '\r';
    return text.startsWith(this.eol, i) ? this.eol.length : 0;
  }

  /**
   * csv-parse's limit, to the byte: it refused a row once the characters of its finished cells plus
   * the bytes of the current one, before its last byte, passed MAX_LINE_BYTES.
   */
  private checkSize(cellChars: number, field: string) {
    if (field.length === 0 || cellChars + field.length * 3 - 1 <= MAX_LINE_BYTES) return;
    if (cellChars + Buffer.byteLength(field, this.encoding) - 1 > MAX_LINE_BYTES) {
      throw new CsvSyntaxError('CSV_MAX_RECORD_SIZE');
    }
  }
}

function csvMessage(error: CsvSyntaxError): string {
  switch (error.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      return 'malformed CSV: a quoted cell is never closed';
    case 'CSV_INVALID_CLOSING_QUOTE':
      return 'malformed CSV: unexpected character after a closing quote';
    case 'CSV_MAX_RECORD_SIZE':
      return `malformed CSV: a row is longer than ${MAX_LINE_BYTES} bytes`;
    case 'INVALID_OPENING_QUOTE':
      return 'malformed CSV';
    case 'CSV_NOT_UNICODE':
      return 'not valid UTF-8 (or UTF-16 after its byte-order mark) in or after this row: save the file as UTF-8';
  }
}
