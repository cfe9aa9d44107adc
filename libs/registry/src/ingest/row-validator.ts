import { FieldType, type FieldDefinition } from '../dataset/dataset-schema';

/** One problem with one row of a batch. `row` is the 0-based index of the data row. */
export interface RowError {
  row: number;
  field: string | null;
  message: string;
}

/** Collects row errors: counts every invalid row, keeps the first {@link MAX_REPORTED_ERRORS}. */
export class ErrorSink {
  readonly errors: RowError[] = [];
  rejectedRows = 0;
  private lastRow = -1;

  add(row: number, field: string | null, message: string) {
    if (row !== this.lastRow) {
      this.rejectedRows++;
      this.lastRow = row;
    }
    if (this.errors.length < MAX_REPORTED_ERRORS) this.errors.push({ row, field, message });
  }

  get full(): boolean {
    return this.errors.length >= MAX_REPORTED_ERRORS;
  }
}

export const MAX_REPORTED_ERRORS = 1000;
export const MAX_STRING_LENGTH = 65_536;

const INT_PATTERN = /^[+-]?\d{1,10}$/;
const FLOAT_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;
const COPY_SPECIAL = /[\\\t\n\r]/;
const BOOLEANS = new Map([
  ['true', 't'],
  ['t', 't'],
  ['yes', 't'],
  ['1', 't'],
  ['false', 'f'],
  ['f', 'f'],
  ['no', 'f'],
  ['0', 'f'],
]);

function validCalendarDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const days = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return d <= days[m - 1];
}

/** Escapes a value for PostgreSQL's COPY text format. */
function copyText(value: string): string {
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

type Converted = { ok: true; text: string } | { ok: false; message: string };
const fail = (message: string): Converted => ({ ok: false, message });

/**
 * Validates rows against a dataset's fields and renders valid ones as lines of COPY text
 * (`_row`, then the fields in order). JSON rows must carry typed values; CSV cells are text, and an
 * empty cell is null.
 */
export class RowValidator {
  private readonly index: Map<string, number>;

  constructor(readonly fields: FieldDefinition[]) {
    this.index = new Map(fields.map((f, i) => [f.name, i]));
  }

  /** Validates a parsed JSON value; returns its COPY line, or null after reporting its errors. */
  fromObject(value: unknown, row: number, sink: ErrorSink): string | null {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      sink.add(row, null, 'a record must be a JSON object');
      return null;
    }
    const cells = new Array<unknown>(this.fields.length).fill(null);
    let ok = true;
    for (const key of Object.keys(value)) {
      const i = this.index.get(key);
      if (i === undefined) {
        sink.add(row, key.slice(0, 100), 'unknown field');
        ok = false;
      } else cells[i] = (value as Record<string, unknown>)[key];
    }
    return this.render(cells, row, sink, ok, false);
  }

  /**
   * Validates a CSV row. `columns` maps each cell position to a field index (-1: unknown column,
   * already reported by the caller through `columnErrors`).
   */
  fromCells(
    cells: string[],
    columns: number[],
    row: number,
    sink: ErrorSink,
    columnErrors: { field: string; message: string }[],
  ): string | null {
    let ok = true;
    for (const e of columnErrors) {
      sink.add(row, e.field, e.message);
      ok = false;
    }
    if (cells.length !== columns.length) {
      sink.add(row, null, `has ${cells.length} cells; the header has ${columns.length}`);
      return null;
    }
    const values = new Array<unknown>(this.fields.length).fill(null);
    for (let c = 0; c < cells.length; c++) {
      const i = columns[c];
      if (i >= 0) values[i] = cells[c] === '' ? null : cells[c];
    }
    return this.render(values, row, sink, ok, true);
  }

  private render(values: unknown[], row: number, sink: ErrorSink, ok: boolean, fromText: boolean): string | null {
    let line = String(row);
    for (let i = 0; i < this.fields.length; i++) {
      const field = this.fields[i];
      const value = values[i];
      if (value === null || value === undefined) {
        if (field.required) {
          sink.add(row, field.name, 'is required');
          ok = false;
        }
        line += '\t\\N';
        continue;
      }
      const converted = fromText ? this.fromText(field.type, value as string) : this.fromJson(field.type, value);
      if (!converted.ok) {
        sink.add(row, field.name, converted.message);
        ok = false;
      } else line += '\t' + converted.text;
    }
    return ok ? line + '\n' : null;
  }

  private fromJson(type: FieldType, value: unknown): Converted {
    switch (type) {
      case FieldType.STRING:
        return typeof value === 'string' ? this.string(value) : fail('expected a string');
      case FieldType.INTEGER:
        return typeof value === 'number' ? this.integer(value) : fail('expected an integer');
      case FieldType.FLOAT:
        return typeof value === 'number' && Number.isFinite(value) ? { ok: true, text: String(value) } : fail('expected a number');
      case FieldType.BOOLEAN:
        return typeof value === 'boolean' ? { ok: true, text: value ? 't' : 'f' } : fail('expected true or false');
      case FieldType.DATE:
        return typeof value === 'string' ? this.date(value) : fail("expected a date 'YYYY-MM-DD'");
      case FieldType.DATETIME:
        return typeof value === 'string' ? this.datetime(value) : fail('expected an ISO 8601 date-time');
    }
  }

  private fromText(type: FieldType, value: string): Converted {
    switch (type) {
      case FieldType.STRING:
        return this.string(value);
      case FieldType.INTEGER:
        return INT_PATTERN.test(value) ? this.integer(Number(value)) : fail('expected an integer');
      case FieldType.FLOAT: {
        const n = Number(value);
        return FLOAT_PATTERN.test(value) && Number.isFinite(n) ? { ok: true, text: String(n) } : fail('expected a number');
      }
      case FieldType.BOOLEAN: {
        const b = BOOLEANS.get(value.toLowerCase());
        return b ? { ok: true, text: b } : fail('expected true or false');
      }
      case FieldType.DATE:
        return this.date(value);
      case FieldType.DATETIME:
        return this.datetime(value);
    }
  }

  private string(value: string): Converted {
    if (value.length > MAX_STRING_LENGTH) return fail(`is longer than ${MAX_STRING_LENGTH} characters`);
    if (value.includes('\u0000')) return fail('contains a NUL character');
    return { ok: true, text: copyText(value) };
  }

  private integer(n: number): Converted {
    if (!Number.isInteger(n)) return fail('expected an integer');
    if (n < -2147483648 || n > 2147483647) return fail('is outside the 32-bit integer range');
    return { ok: true, text: String(n) };
  }

  private date(value: string): Converted {
    const m = DATE_PATTERN.exec(value);
    if (!m || !validCalendarDate(+m[1], +m[2], +m[3])) return fail("expected a date 'YYYY-MM-DD'");
    return { ok: true, text: value };
  }

  private datetime(value: string): Converted {
    const m = DATETIME_PATTERN.exec(value);
    if (!m || !validCalendarDate(+m[1], +m[2], +m[3]) || +m[4] > 23 || +m[5] > 59 || (m[7] !== undefined && +m[7] > 59)) {
      return fail('expected an ISO 8601 date-time such as 2024-05-01T13:45:00Z');
    }
    // A date-time without an offset is taken as UTC, so the stored instant never depends on the server's zone.
    let normalized = value.replace(' ', 'T');
    if (!m[9]) normalized += 'Z';
    else if (/^[+-]\d{4}$/.test(m[9])) normalized = normalized.slice(0, -2) + ':' + normalized.slice(-2);
    const at = new Date(normalized);
    if (Number.isNaN(at.getTime())) return fail('expected an ISO 8601 date-time such as 2024-05-01T13:45:00Z');
    return { ok: true, text: at.toISOString() };
  }
}
