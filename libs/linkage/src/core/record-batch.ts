import type { NormalisedIdentity } from './normalise';

/**
 * Normalised records in columns: what linkage jobs hand each other through PostgreSQL, as one
 * binary blob per (chunk, partition). Columns are typed arrays, so a job loads a partition of
 * hundreds of thousands of records in milliseconds and compares them without objects per record.
 * Names are the only strings.
 *
 * `recordId` is `chunk << 20 | index in chunk`: unique within a run, and the same in every run over
 * the same records. `mask` says through which blocking schemes a record reached a partition.
 */
export class RecordBatch {
  private constructor(
    readonly size: number,
    readonly recordId: Uint32Array,
    readonly dataset: Uint8Array,
    readonly mask: Uint8Array,
    readonly year: Uint16Array,
    readonly month: Uint8Array,
    readonly day: Uint8Array,
    readonly sex: Uint8Array,
    readonly middleInitial: Uint8Array,
    readonly ssn: Uint32Array,
    readonly zip: Uint32Array,
    readonly first: string[],
    readonly last: string[],
  ) {}

  /** An empty batch with room for `capacity` records, filled with {@link RecordBatchBuilder.push}. */
  static builder(capacity = 1024): RecordBatchBuilder {
    return new RecordBatchBuilder(capacity);
  }

  /** @internal */
  static of(columns: Omit<RecordBatchColumns, 'size'> & { size: number }): RecordBatch {
    const c = columns;
    return new RecordBatch(
      c.size,
      c.recordId,
      c.dataset,
      c.mask,
      c.year,
      c.month,
      c.day,
      c.sex,
      c.middleInitial,
      c.ssn,
      c.zip,
      c.first,
      c.last,
    );
  }

  /** The batches one after the other. */
  static concat(batches: readonly RecordBatch[]): RecordBatch {
    if (batches.length === 1) return batches[0];
    const builder = new RecordBatchBuilder(batches.reduce((n, b) => n + b.size, 0));
    for (const batch of batches) builder.append(batch);
    return builder.build();
  }

  /** The identity of record `i`. */
  identity(i: number): NormalisedIdentity {
    return {
      first: this.first[i],
      last: this.last[i],
      middleInitial: this.middleInitial[i],
      year: this.year[i],
      month: this.month[i],
      day: this.day[i],
      sex: this.sex[i],
      ssn: this.ssn[i],
      zip: this.zip[i],
    };
  }

  /** The batch as bytes: a small header, the typed columns, then the names as UTF-8 lines. */
  serialise(): Buffer {
    const n = this.size;
    const names = Buffer.from(this.first.join('\n') + '\u0000' + this.last.join('\n'), 'utf8');
    const columns: ArrayBufferView[] = [
      this.recordId,
      this.ssn,
      this.zip,
      this.year,
      this.dataset,
      this.mask,
      this.month,
      this.day,
      this.sex,
      this.middleInitial,
    ].map((a) => a.subarray(0, n));
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(n, 4);
    header.writeUInt32LE(names.length, 8);
    const parts: Buffer[] = [header];
    for (const column of columns) {
      parts.push(Buffer.from(column.buffer, column.byteOffset, column.byteLength));
      const pad = (4 - (column.byteLength % 4)) % 4;
      if (pad) parts.push(Buffer.alloc(pad));
    }
    parts.push(names);
    return Buffer.concat(parts);
  }

  /** Reads a batch written by {@link serialise}. */
  static deserialise(bytes: Buffer): RecordBatch {
    if (bytes.length < HEADER_BYTES || bytes.readUInt32LE(0) !== MAGIC) {
      throw new Error('not a linkage record batch');
    }
    const n = bytes.readUInt32LE(4);
    const namesLength = bytes.readUInt32LE(8);
    // Copy once into an aligned buffer: typed arrays need their element alignment.
    const aligned = new ArrayBuffer(bytes.length);
    new Uint8Array(aligned).set(bytes);
    let offset = HEADER_BYTES;
    const take = <T>(make: (buffer: ArrayBuffer, offset: number, length: number) => T, bytesPer: number) => {
      const column = make(aligned, offset, n);
      offset += n * bytesPer;
      offset += (4 - (offset % 4)) % 4;
      return column;
    };
    const recordId = take((b, o, l) => new Uint32Array(b, o, l), 4);
    const ssn = take((b, o, l) => new Uint32Array(b, o, l), 4);
    const zip = take((b, o, l) => new Uint32Array(b, o, l), 4);
    const year = take((b, o, l) => new Uint16Array(b, o, l), 2);
    const dataset = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const mask = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const month = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const day = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const sex = take((b, o, l) => new Uint8Array(b, o, l), 1);
    const middleInitial = take((b, o, l) => new Uint8Array(b, o, l), 1);
    if (offset + namesLength !== bytes.length) throw new Error('a linkage record batch is truncated');
    const text = bytes.toString('utf8', offset, offset + namesLength);
    const split = text.indexOf('\u0000');
    const lines = (s: string) => (n === 0 ? [] : s.split('\n'));
    const first = lines(text.slice(0, split));
    const last = lines(text.slice(split + 1));
    if (first.length !== n || last.length !== n) throw new Error('a linkage record batch has bad names');
    return RecordBatch.of({
      size: n,
      recordId,
      dataset,
      mask,
      year,
      month,
      day,
      sex,
      middleInitial,
      ssn,
      zip,
      first,
      last,
    });
  }
}

const MAGIC = 0x4b4e4c31; // "1LNK"
const HEADER_BYTES = 12;

interface RecordBatchColumns {
  size: number;
  recordId: Uint32Array;
  dataset: Uint8Array;
  mask: Uint8Array;
  year: Uint16Array;
  month: Uint8Array;
  day: Uint8Array;
  sex: Uint8Array;
  middleInitial: Uint8Array;
  ssn: Uint32Array;
  zip: Uint32Array;
  first: string[];
  last: string[];
}

/** Fills a {@link RecordBatch} record by record, growing as needed. */
export class RecordBatchBuilder {
  private c: RecordBatchColumns;

  constructor(capacity: number) {
    this.c = allocate(Math.max(16, capacity));
  }

  get size() {
    return this.c.size;
  }

  /** Adds a record. */
  push(recordId: number, dataset: number, mask: number, identity: NormalisedIdentity): void {
    const c = this.c;
    if (c.size === c.recordId.length) this.grow(c.size * 2);
    const i = this.c.size++;
    const d = this.c;
    d.recordId[i] = recordId;
    d.dataset[i] = dataset;
    d.mask[i] = mask;
    d.year[i] = identity.year;
    d.month[i] = identity.month;
    d.day[i] = identity.day;
    d.sex[i] = identity.sex;
    d.middleInitial[i] = identity.middleInitial;
    d.ssn[i] = identity.ssn;
    d.zip[i] = identity.zip;
    d.first[i] = identity.first;
    d.last[i] = identity.last;
  }

  /** Adds record `i` of another batch, with another mask. */
  pushFrom(batch: RecordBatch, i: number, mask: number): void {
    const c = this.c;
    if (c.size === c.recordId.length) this.grow(c.size * 2);
    const k = this.c.size++;
    const d = this.c;
    d.recordId[k] = batch.recordId[i];
    d.dataset[k] = batch.dataset[i];
    d.mask[k] = mask;
    d.year[k] = batch.year[i];
    d.month[k] = batch.month[i];
    d.day[k] = batch.day[i];
    d.sex[k] = batch.sex[i];
    d.middleInitial[k] = batch.middleInitial[i];
    d.ssn[k] = batch.ssn[i];
    d.zip[k] = batch.zip[i];
    d.first[k] = batch.first[i];
    d.last[k] = batch.last[i];
  }

  /** Adds every record of a batch. */
  append(batch: RecordBatch): void {
    if (this.c.size + batch.size > this.c.recordId.length) this.grow(this.c.size + batch.size);
    const c = this.c;
    const at = c.size;
    c.recordId.set(batch.recordId, at);
    c.dataset.set(batch.dataset, at);
    c.mask.set(batch.mask, at);
    c.year.set(batch.year, at);
    c.month.set(batch.month, at);
    c.day.set(batch.day, at);
    c.sex.set(batch.sex, at);
    c.middleInitial.set(batch.middleInitial, at);
    c.ssn.set(batch.ssn, at);
    c.zip.set(batch.zip, at);
    for (let i = 0; i < batch.size; i++) {
      c.first[at + i] = batch.first[i];
      c.last[at + i] = batch.last[i];
    }
    c.size += batch.size;
  }

  build(): RecordBatch {
    const c = this.c;
    const n = c.size;
    return RecordBatch.of({
      size: n,
      recordId: c.recordId.slice(0, n),
      dataset: c.dataset.slice(0, n),
      mask: c.mask.slice(0, n),
      year: c.year.slice(0, n),
      month: c.month.slice(0, n),
      day: c.day.slice(0, n),
      sex: c.sex.slice(0, n),
      middleInitial: c.middleInitial.slice(0, n),
      ssn: c.ssn.slice(0, n),
      zip: c.zip.slice(0, n),
      first: c.first.slice(0, n),
      last: c.last.slice(0, n),
    });
  }

  private grow(capacity: number) {
    const old = this.c;
    const c = allocate(capacity);
    c.size = old.size;
    c.recordId.set(old.recordId.subarray(0, old.size));
    c.dataset.set(old.dataset.subarray(0, old.size));
    c.mask.set(old.mask.subarray(0, old.size));
    c.year.set(old.year.subarray(0, old.size));
    c.month.set(old.month.subarray(0, old.size));
    c.day.set(old.day.subarray(0, old.size));
    c.sex.set(old.sex.subarray(0, old.size));
    c.middleInitial.set(old.middleInitial.subarray(0, old.size));
    c.ssn.set(old.ssn.subarray(0, old.size));
    c.zip.set(old.zip.subarray(0, old.size));
    c.first = old.first;
    c.last = old.last;
    this.c = c;
  }
}

function allocate(capacity: number): RecordBatchColumns {
  return {
    size: 0,
    recordId: new Uint32Array(capacity),
    dataset: new Uint8Array(capacity),
    mask: new Uint8Array(capacity),
    year: new Uint16Array(capacity),
    month: new Uint8Array(capacity),
    day: new Uint8Array(capacity),
    sex: new Uint8Array(capacity),
    middleInitial: new Uint8Array(capacity),
    ssn: new Uint32Array(capacity),
    zip: new Uint32Array(capacity),
    first: [],
    last: [],
  };
}
