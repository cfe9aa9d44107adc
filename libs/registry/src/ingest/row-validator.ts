import { validCalendarDate } from '@broker/core';
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
const DATETIME_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(:(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;
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
/** The two ASCII digits at `i` as a number, or -1. Parsing by char code spares a regex match per cell. */
function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** The calendar date `YYYY-MM-DD` at the start of `s`, validated; false when it is not one. */
function leadingDate(s: string): boolean {
  const hi = twoDigits(s, 0);
  const lo = twoDigits(s, 2);
  if (hi < 0 || lo < 0 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return false;
  return validCalendarDate(hi * 100 + lo, twoDigits(s, 5), twoDigits(s, 8));
}

/** Whether `v` is an integer as JavaScript would print it, of at most nine digits: surely 32-bit. */
function plainInteger(v: string): boolean {
  const length = v.length;
  let i = v.charCodeAt(0) === 45 ? 1 : 0;
  if (length - i < 1 || length - i > 9) return false;
  const first = v.charCodeAt(i);
  if (first < 49 || first > 57) return v === '0';
  for (i++; i < length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Whether `v` is `-?digits(.digits)?`, not zero, of at most 18 characters: within the 20 digits
 * that JavaScript, like PostgreSQL, must round correctly.
 */
function plainDecimal(v: string): boolean {
  const length = v.length;
  if (length === 0 || length > 18) return false;
  let digits = 0;
  let fraction = -1;
  let nonZero = false;
  for (let i = v.charCodeAt(0) === 45 ? 1 : 0; i < length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits++;
      if (fraction >= 0) fraction++;
      if (c !== 48) nonZero = true;
    } else if (c === 46 && fraction < 0 && digits > 0) fraction = 0;
    else return false;
  }
  return nonZero && fraction !== 0;
}

/** Why a value was refused. One instance per message, so refusing allocates nothing. */
class Invalid {
  constructor(readonly message: string) {}
}

const NOT_STRING = new Invalid('expected a string');
const TOO_LONG = new Invalid(`is longer than ${MAX_STRING_LENGTH} characters`);
const HAS_NUL = new Invalid('contains a NUL character');
const NOT_INTEGER = new Invalid('expected an integer');
const OUT_OF_RANGE = new Invalid('is outside the 32-bit integer range');
const NOT_NUMBER = new Invalid('expected a number');
const NOT_BOOLEAN = new Invalid('expected true or false');
const NOT_DATE = new Invalid("expected a date 'YYYY-MM-DD'");
const NOT_DATETIME = new Invalid('expected an ISO 8601 date-time such as 2024-05-01T13:45:00Z');
const NOT_DATETIME_STRING = new Invalid('expected an ISO 8601 date-time');
const REQUIRED = new Invalid('is required');

/** Converts one value to its COPY text, or says why it cannot. */
type Converter = (value: string) => string | Invalid;
type JsonConverter = (value: unknown) => string | Invalid;

/** A string as COPY text: the escapes PostgreSQL's text format needs, and the limits. */
function string(value: string): string | Invalid {
  if (value.length > MAX_STRING_LENGTH) return TOO_LONG;
  if (value.includes('\u0000')) return HAS_NUL;
  if (!COPY_SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r',
  );
}

function integer(n: number): string | Invalid {
  if (!Number.isInteger(n)) return NOT_INTEGER;
  if (n < -2147483648 || n > 2147483647) return OUT_OF_RANGE;
  return String(n);
}

function date(value: string): string | Invalid {
  return value.length === 10 && leadingDate(value) ? value : NOT_DATE;
}

/**
 * A date-time as an ISO instant in UTC. A date-time without an offset is taken as UTC, so the stored
 * instant never depends on the server's zone. The common shapes (UTC or no offset) are formatted
 * directly, as `Date#toISOString` would: milliseconds, further digits truncated.
 */
function datetime(value: string): string | Invalid {
  return utcDatetime(value) ?? datetimeByDate(value);
}

function utcDatetime(v: string): string | undefined {
  const length = v.length;
  if (length < 16 || !leadingDate(v)) return undefined;
  const t = v.charCodeAt(10);
  if (t !== 84 && t !== 32) return undefined;
  const hour = twoDigits(v, 11);
  const minute = twoDigits(v, 14);
  if (hour < 0 || hour > 23 || v.charCodeAt(13) !== 58 || minute < 0 || minute > 59) return undefined;
  let seconds = '00';
  let millis = '000';
  let i = 16;
  if (v.charCodeAt(i) === 58) {
    const s = twoDigits(v, 17);
    if (s < 0 || s > 59) return undefined;
    seconds = v.slice(17, 19);
    i = 19;
    if (v.charCodeAt(i) === 46) {
      const start = ++i;
      while (i < length && v.charCodeAt(i) >= 48 && v.charCodeAt(i) <= 57) i++;
      if (i === start || i - start > 9) return undefined;
      millis = (v.slice(start, Math.min(i, start + 3)) + '00').slice(0, 3);
    }
  }
  if (i < length && !(i === length - 1 && v.charCodeAt(i) === 90)) return undefined;
  return `${v.slice(0, 10)}T${v.slice(11, 16)}:${seconds}.${millis}Z`;
}

function datetimeByDate(value: string): string | Invalid {
  const m = DATETIME_PATTERN.exec(value);
  if (
    !m ||
    !validCalendarDate(+m[1], +m[2], +m[3]) ||
    +m[4] > 23 ||
    +m[5] > 59 ||
    (m[7] !== undefined && +m[7] > 59)
  ) {
    return NOT_DATETIME;
  }
  let normalized = value.replace(' ', 'T');
  if (!m[9]) normalized += 'Z';
  else if (/^[+-]\d{4}$/.test(m[9])) normalized = normalized.slice(0, -2) + ':' + normalized.slice(-2);
  const at = new Date(normalized);
  if (Number.isNaN(at.getTime())) return NOT_DATETIME;
  return at.toISOString();
}

/** CSV cells are text. */
const FROM_TEXT: Record<FieldType, Converter> = {
  [FieldType.STRING]: string,
  [FieldType.INTEGER]: (v) => (plainInteger(v) ? v : INT_PATTERN.test(v) ? integer(Number(v)) : NOT_INTEGER),
  [FieldType.FLOAT]: (v) => {
    // Printing a double is the dearest step of a row. A plain decimal reads to the same double in
    // PostgreSQL as in JavaScript (both round correctly), so it goes as written; zero is left to
    // String(), as -0 would otherwise be stored as -0.
    if (plainDecimal(v)) return v;
    const n = Number(v);
    return FLOAT_PATTERN.test(v) && Number.isFinite(n) ? String(n) : NOT_NUMBER;
  },
  [FieldType.BOOLEAN]: (v) =>
    v === 'true' ? 't' : v === 'false' ? 'f' : (BOOLEANS.get(v.toLowerCase()) ?? NOT_BOOLEAN),
  [FieldType.DATE]: date,
  [FieldType.DATETIME]: datetime,
};

/** JSON values must carry their type. */
const FROM_JSON: Record<FieldType, JsonConverter> = {
  [FieldType.STRING]: (v) => (typeof v === 'string' ? string(v) : NOT_STRING),
  [FieldType.INTEGER]: (v) => (typeof v === 'number' ? integer(v) : NOT_INTEGER),
  [FieldType.FLOAT]: (v) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : NOT_NUMBER),
  [FieldType.BOOLEAN]: (v) => (typeof v === 'boolean' ? (v ? 't' : 'f') : NOT_BOOLEAN),
  [FieldType.DATE]: (v) => (typeof v === 'string' ? date(v) : NOT_DATE),
  [FieldType.DATETIME]: (v) => (typeof v === 'string' ? datetime(v) : NOT_DATETIME_STRING),
};

/**
 * Validates rows against a dataset's fields and renders valid ones as lines of COPY text (the
 * fields in order); {@link key} then holds the COPY text of the row's key. JSON rows must carry
 * typed values; CSV cells are text, and an empty cell is null.
 */
export class RowValidator {
  private readonly index: Map<string, number>;
  private readonly names: string[];
  private readonly required: boolean[];
  private readonly fromText: Converter[];
  private readonly fromJson: JsonConverter[];
  private readonly keyIndex: number;
  private positionsOf: number[] | null = null;
  private positions: number[] = [];
  /** The COPY text of the key of the last valid row, or of the last row whose key was valid. */
  key = '';
  /** Whether the last row's key was present and valid (whatever its other fields were). */
  keyValid = false;

  constructor(
    readonly fields: FieldDefinition[],
    keyField?: string,
  ) {
    this.keyIndex = fields.findIndex((f) => f.name === keyField);
    this.index = new Map(fields.map((f, i) => [f.name, i]));
    this.names = fields.map((f) => f.name);
    this.required = fields.map((f) => f.required);
    this.fromText = fields.map((f) => FROM_TEXT[f.type]);
    this.fromJson = fields.map((f) => FROM_JSON[f.type]);
  }

  /** Validates a parsed JSON value; returns its COPY line, or null after reporting its errors. */
  fromObject(value: unknown, row: number, sink: ErrorSink): string | null {
    this.keyValid = false;
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
    let line = '';
    for (let i = 0; i < cells.length; i++) {
      const cell = cells[i];
      const text = cell === null || cell === undefined ? this.empty(i) : this.fromJson[i](cell);
      if (typeof text === 'string') {
        line = i === 0 ? text : line + '\t' + text;
        if (i === this.keyIndex) {
          this.key = text;
          this.keyValid = text !== '\\N';
        }
      } else {
        sink.add(row, this.names[i], text.message);
        ok = false;
      }
    }
    return ok ? line + '\n' : null;
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
    this.keyValid = false;
    let ok = true;
    for (const e of columnErrors) {
      sink.add(row, e.field, e.message);
      ok = false;
    }
    if (cells.length !== columns.length) {
      sink.add(row, null, `has ${cells.length} cells; the header has ${columns.length}`);
      return null;
    }
    const positions = this.cellPositions(columns);
    let line = '';
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i];
      const cell = p < 0 ? '' : cells[p];
      const text = cell === '' ? this.empty(i) : this.fromText[i](cell);
      if (typeof text === 'string') {
        line = i === 0 ? text : line + '\t' + text;
        if (i === this.keyIndex) {
          this.key = text;
          this.keyValid = text !== '\\N';
        }
      } else {
        sink.add(row, this.names[i], text.message);
        ok = false;
      }
    }
    return ok ? line + '\n' : null;
  }

  /** COPY's null, or the refusal of a required field. */
  private empty(i: number): string | Invalid {
    return this.required[i] ? REQUIRED : '\\N';
  }

  /** For each field, the position of its cell (the last, should `columns` repeat it), or -1. Cached per header. */
  private cellPositions(columns: number[]): number[] {
    if (this.positionsOf !== columns) {
      this.positions = this.fields.map((_, i) => columns.lastIndexOf(i));
      this.positionsOf = columns;
    }
    return this.positions;
  }
}
