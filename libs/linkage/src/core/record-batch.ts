import { blockingComponentsOf, hashString, houseHash, initialsOf, lastNameCode, nameCode } from './blocking';
import { nameGroup } from './nicknames';
import type { NormalisedIdentity } from './normalise';

/**
 * Normalised records in columns: what linkage jobs hand each other through PostgreSQL, as one
 * binary blob per (chunk, partition). Columns are typed arrays, so a job loads a partition of
 * hundreds of thousands of records in milliseconds and compares them without objects per record.
 * Names are dictionary-encoded: `names` holds each distinct name once (`names[0]` is '', missing),
 * and `firstName`/`lastName` index it, so equal names are equal numbers and a batch carries a few
 * thousand strings rather than two per record.
 *
 * `recordId` is `chunk << 20 | index in chunk`: unique within a run, and the same in every run over
 * the same records. `mask` says through which blocking schemes a record reached a partition.
 * `zip`, `idNumber`, `address` and `city` index the same dictionary (they are text of any country).
 * `dobKey`, `groupHash`, `codeHash`, `firstCode`, `idHash`, `initials` and `house` are the record's blocking components (see blocking.ts),
 * computed once per distinct name when a batch is built or read, so that scoring hashes no
 * strings; they are not serialised.
 */
export class RecordBatch {
  private constructor(
    readonly size: number,
    readonly recordId: Uint32Array,
    readonly dataset: Uint16Array,
    readonly mask: Uint8Array,
    readonly year: Uint16Array,
    readonly month: Uint8Array,
    readonly day: Uint8Array,
    readonly sex: Uint8Array,
    readonly middleInitial: Uint8Array,
    readonly ssn: Uint32Array,
    readonly zip: Uint32Array,
    readonly dobKey: Uint32Array,
    readonly groupHash: Uint32Array,
    readonly codeHash: Uint32Array,
    readonly firstCode: Uint32Array,
    readonly idHash: Uint32Array,
    readonly initials: Uint16Array,
    readonly house: Uint32Array,
    readonly firstName: Uint32Array,
    readonly lastName: Uint32Array,
    readonly idNumber: Uint32Array,
    readonly address: Uint32Array,
    readonly city: Uint32Array,
    readonly names: readonly string[],
  ) {}

  /** An empty batch with room for `capacity` records, filled with {@link RecordBatchBuilder.push}. */
  static builder(capacity = 1024): RecordBatchBuilder {
    return new RecordBatchBuilder(capacity);
  }

  /** @internal */
  static of(c: RecordBatchColumns, names: readonly string[]): RecordBatch {
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
      c.dobKey,
      c.groupHash,
      c.codeHash,
      c.firstCode,
      c.idHash,
      c.initials,
      c.house,
      c.firstName,
      c.lastName,
      c.idNumber,
      c.address,
      c.city,
      names,
    );
  }

  /** The batches one after the other. */
  static concat(batches: readonly RecordBatch[]): RecordBatch {
    if (batches.length === 1) return batches[0];
    const builder = new RecordBatchBuilder(batches.reduce((n, b) => n + b.size, 0));
    for (const batch of batches) builder.append(batch);
    return builder.build();
  }

  /** The batch with its records in another order: record k of the result is record order[k] of this one. */
  reorder(order: Uint32Array): RecordBatch {
    const u32 = (column: Uint32Array) => {
      const out = new Uint32Array(order.length);
      for (let k = 0; k < order.length; k++) out[k] = column[order[k]];
      return out;
    };
    const u16 = (column: Uint16Array) => {
      const out = new Uint16Array(order.length);
      for (let k = 0; k < order.length; k++) out[k] = column[order[k]];
      return out;
    };
    const u8 = (column: Uint8Array) => {
      const out = new Uint8Array(order.length);
      for (let k = 0; k < order.length; k++) out[k] = column[order[k]];
      return out;
    };
    return RecordBatch.of(
      {
        size: order.length,
        recordId: u32(this.recordId),
        dataset: u16(this.dataset),
        mask: u8(this.mask),
        year: u16(this.year),
        month: u8(this.month),
        day: u8(this.day),
        sex: u8(this.sex),
        middleInitial: u8(this.middleInitial),
        ssn: u32(this.ssn),
        zip: u32(this.zip),
        dobKey: u32(this.dobKey),
        groupHash: u32(this.groupHash),
        codeHash: u32(this.codeHash),
        firstCode: u32(this.firstCode),
        idHash: u32(this.idHash),
        initials: u16(this.initials),
        house: u32(this.house),
        firstName: u32(this.firstName),
        lastName: u32(this.lastName),
        idNumber: u32(this.idNumber),
        address: u32(this.address),
        city: u32(this.city),
      },
      this.names,
    );
  }

  /** The given name of record `i` ('' when missing). */
  first(i: number): string {
    return this.names[this.firstName[i]];
  }

  /** The surname of record `i` ('' when missing). */
  last(i: number): string {
    return this.names[this.lastName[i]];
  }

  /** The identity of record `i`. */
  identity(i: number): NormalisedIdentity {
    return {
      first: this.first(i),
      last: this.last(i),
      middleInitial: this.middleInitial[i],
      year: this.year[i],
      month: this.month[i],
      day: this.day[i],
      sex: this.sex[i],
      ssn: this.ssn[i],
      zip: this.names[this.zip[i]],
      idNumber: this.names[this.idNumber[i]],
      address: this.names[this.address[i]],
      city: this.names[this.city[i]],
    };
  }

  /** The batch as bytes: a small header, the typed columns, then the names as UTF-8 lines. */
  serialise(): Buffer {
    const n = this.size;
    const names = Buffer.from(this.names.join('\n'), 'utf8');
    const columns: ArrayBufferView[] = [
      this.recordId,
      this.ssn,
      this.zip,
      this.firstName,
      this.lastName,
      this.idNumber,
      this.address,
      this.city,
      this.dataset,
      this.year,
      this.mask,
      this.month,
      this.day,
      this.sex,
      this.middleInitial,
    ].map((a) => a.subarray(0, n));
    const header = Buffer.alloc(HEADER_BYTES);
    header.writeUInt32LE(MAGIC, 0);
    header.writeUInt32LE(n, 4);
    header.writeUInt32LE(this.names.length, 8);
    header.writeUInt32LE(names.length, 12);
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
    const nameCount = bytes.readUInt32LE(8);
    const namesLength = bytes.readUInt32LE(12);
    // Typed arrays need their element alignment: copy once into an aligned buffer.
    const aligned = new ArrayBuffer(bytes.length);
    new Uint8Array(aligned).set(bytes);
    let offset = HEADER_BYTES;
    const take = <T>(make: (buffer: ArrayBuffer, offset: number, length: number) => T, bytesPer: number) => {
      if (offset + n * bytesPer > bytes.length) throw new Error('a linkage record batch is truncated');
      const column = make(aligned, offset, n);
      offset += n * bytesPer;
      offset += (4 - (offset % 4)) % 4;
      return column;
    };
    const u32 = (b: ArrayBuffer, o: number, l: number) => new Uint32Array(b, o, l);
    const u16 = (b: ArrayBuffer, o: number, l: number) => new Uint16Array(b, o, l);
    const u8 = (b: ArrayBuffer, o: number, l: number) => new Uint8Array(b, o, l);
    const columns: RecordBatchColumns = {
      size: n,
      recordId: take(u32, 4),
      ssn: take(u32, 4),
      zip: take(u32, 4),
      dobKey: new Uint32Array(n),
      groupHash: new Uint32Array(n),
      codeHash: new Uint32Array(n),
      firstCode: new Uint32Array(n),
      idHash: new Uint32Array(n),
      initials: new Uint16Array(n),
      house: new Uint32Array(n),
      firstName: take(u32, 4),
      lastName: take(u32, 4),
      idNumber: take(u32, 4),
      address: take(u32, 4),
      city: take(u32, 4),
      dataset: take(u16, 2),
      year: take(u16, 2),
      mask: take(u8, 1),
      month: take(u8, 1),
      day: take(u8, 1),
      sex: take(u8, 1),
      middleInitial: take(u8, 1),
    };
    if (offset + namesLength !== bytes.length) throw new Error('a linkage record batch is truncated');
    const names = bytes.toString('utf8', offset, offset + namesLength).split('\n');
    if (names.length !== nameCount || names[0] !== '')
      throw new Error('a linkage record batch has bad names');
    for (let i = 0; i < n; i++) {
      if (
        columns.firstName[i] >= nameCount ||
        columns.lastName[i] >= nameCount ||
        columns.zip[i] >= nameCount ||
        columns.idNumber[i] >= nameCount ||
        columns.address[i] >= nameCount ||
        columns.city[i] >= nameCount
      ) {
        throw new Error('a linkage record batch has bad names');
      }
    }
    fillBlockingComponents(columns, names);
    return RecordBatch.of(columns, names);
  }
}

const MAGIC = 0x4b4e4c35; // "5LNK"
const HEADER_BYTES = 16;

/** The blocking components of every record, from its date and the codes of its names (once per name). */
function fillBlockingComponents(c: RecordBatchColumns, names: readonly string[]) {
  const groups = new Uint32Array(names.length);
  const codes = new Uint32Array(names.length);
  const firstCodes = new Uint32Array(names.length);
  const hashes = new Uint32Array(names.length);
  const houses = new Uint32Array(names.length);
  for (let id = 1; id < names.length; id++) {
    groups[id] = hashString(nameGroup(names[id]));
    codes[id] = hashString(lastNameCode(names[id]));
    firstCodes[id] = hashString(nameCode(names[id]));
    hashes[id] = hashString(names[id]);
    houses[id] = houseHash(names[id]);
  }
  for (let i = 0; i < c.size; i++) {
    const year = c.year[i];
    const month = c.month[i];
    const day = c.day[i];
    c.dobKey[i] = year ? year * 10_000 + (month < day ? month : day) * 100 + (month < day ? day : month) : 0;
    c.groupHash[i] = groups[c.firstName[i]];
    c.codeHash[i] = codes[c.lastName[i]];
    c.firstCode[i] = firstCodes[c.firstName[i]];
    c.idHash[i] = hashes[c.idNumber[i]];
    c.initials[i] = initialsOf(names[c.firstName[i]], names[c.lastName[i]]);
    c.house[i] = houses[c.address[i]];
  }
}

interface RecordBatchColumns {
  size: number;
  recordId: Uint32Array;
  dataset: Uint16Array;
  mask: Uint8Array;
  year: Uint16Array;
  month: Uint8Array;
  day: Uint8Array;
  sex: Uint8Array;
  middleInitial: Uint8Array;
  ssn: Uint32Array;
  zip: Uint32Array;
  dobKey: Uint32Array;
  groupHash: Uint32Array;
  codeHash: Uint32Array;
  firstCode: Uint32Array;
  idHash: Uint32Array;
  initials: Uint16Array;
  house: Uint32Array;
  firstName: Uint32Array;
  lastName: Uint32Array;
  idNumber: Uint32Array;
  address: Uint32Array;
  city: Uint32Array;
}

/** Fills a {@link RecordBatch} record by record, growing as needed. */
export class RecordBatchBuilder {
  private c: RecordBatchColumns;
  private readonly names: string[] = [''];
  private readonly nameIds = new Map<string, number>([['', 0]]);
  /** The batch {@link pushFrom} last copied from, and its dictionary ids mapped into this one's (-1: not yet). */
  private source: RecordBatch | null = null;
  private sourceIds = new Int32Array(0);

  constructor(capacity: number) {
    this.c = allocate(Math.max(16, capacity));
  }

  get size() {
    return this.c.size;
  }

  private nameId(name: string): number {
    let id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.nameIds.set(name, id);
    }
    return id;
  }

  /** Adds a record. */
  push(recordId: number, dataset: number, mask: number, identity: NormalisedIdentity): void {
    if (this.c.size === this.c.recordId.length) this.grow(this.c.size * 2);
    const d = this.c;
    const i = d.size++;
    d.recordId[i] = recordId;
    d.dataset[i] = dataset;
    d.mask[i] = mask;
    d.year[i] = identity.year;
    d.month[i] = identity.month;
    d.day[i] = identity.day;
    d.sex[i] = identity.sex;
    d.middleInitial[i] = identity.middleInitial;
    d.ssn[i] = identity.ssn;
    const components = blockingComponentsOf(identity);
    d.dobKey[i] = components.dob;
    d.groupHash[i] = components.firstGroup;
    d.codeHash[i] = components.lastCode;
    d.firstCode[i] = components.firstCode;
    d.idHash[i] = components.idNumber;
    d.initials[i] = components.initials;
    d.house[i] = components.house;
    d.firstName[i] = this.nameId(identity.first);
    d.lastName[i] = this.nameId(identity.last);
    d.zip[i] = this.nameId(identity.zip);
    d.idNumber[i] = this.nameId(identity.idNumber);
    d.address[i] = this.nameId(identity.address);
    d.city[i] = this.nameId(identity.city);
  }

  /** Adds record `i` of another batch, with another mask. */
  pushFrom(batch: RecordBatch, i: number, mask: number): void {
    if (this.c.size === this.c.recordId.length) this.grow(this.c.size * 2);
    const d = this.c;
    const k = d.size++;
    d.recordId[k] = batch.recordId[i];
    d.dataset[k] = batch.dataset[i];
    d.mask[k] = mask;
    d.year[k] = batch.year[i];
    d.month[k] = batch.month[i];
    d.day[k] = batch.day[i];
    d.sex[k] = batch.sex[i];
    d.middleInitial[k] = batch.middleInitial[i];
    d.ssn[k] = batch.ssn[i];
    d.dobKey[k] = batch.dobKey[i];
    d.groupHash[k] = batch.groupHash[i];
    d.codeHash[k] = batch.codeHash[i];
    d.firstCode[k] = batch.firstCode[i];
    d.idHash[k] = batch.idHash[i];
    d.initials[k] = batch.initials[i];
    d.house[k] = batch.house[i];
    d.firstName[k] = this.mappedId(batch, batch.firstName[i]);
    d.lastName[k] = this.mappedId(batch, batch.lastName[i]);
    d.zip[k] = this.mappedId(batch, batch.zip[i]);
    d.idNumber[k] = this.mappedId(batch, batch.idNumber[i]);
    d.address[k] = this.mappedId(batch, batch.address[i]);
    d.city[k] = this.mappedId(batch, batch.city[i]);
  }

  /**
   * The id in this batch's dictionary of dictionary id `id` of `batch`: looked up once per
   * distinct value of the source (a record is copied to up to five partitions, each value six).
   */
  private mappedId(batch: RecordBatch, id: number): number {
    if (this.source !== batch) {
      this.source = batch;
      this.sourceIds = new Int32Array(batch.names.length).fill(-1);
    }
    let mapped = this.sourceIds[id];
    if (mapped < 0) this.sourceIds[id] = mapped = this.nameId(batch.names[id]);
    return mapped;
  }

  /** Adds every record of a batch (its names mapped into this batch's dictionary, once per name). */
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
    c.dobKey.set(batch.dobKey, at);
    c.groupHash.set(batch.groupHash, at);
    c.codeHash.set(batch.codeHash, at);
    c.firstCode.set(batch.firstCode, at);
    c.idHash.set(batch.idHash, at);
    c.initials.set(batch.initials, at);
    c.house.set(batch.house, at);
    const remap = new Uint32Array(batch.names.length);
    for (let id = 0; id < batch.names.length; id++) remap[id] = this.nameId(batch.names[id]);
    for (let i = 0; i < batch.size; i++) {
      c.firstName[at + i] = remap[batch.firstName[i]];
      c.lastName[at + i] = remap[batch.lastName[i]];
      c.zip[at + i] = remap[batch.zip[i]];
      c.idNumber[at + i] = remap[batch.idNumber[i]];
      c.address[at + i] = remap[batch.address[i]];
      c.city[at + i] = remap[batch.city[i]];
    }
    c.size += batch.size;
  }

  build(): RecordBatch {
    const c = this.c;
    const n = c.size;
    return RecordBatch.of(
      {
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
        dobKey: c.dobKey.slice(0, n),
        groupHash: c.groupHash.slice(0, n),
        codeHash: c.codeHash.slice(0, n),
        firstCode: c.firstCode.slice(0, n),
        idHash: c.idHash.slice(0, n),
        initials: c.initials.slice(0, n),
        house: c.house.slice(0, n),
        firstName: c.firstName.slice(0, n),
        lastName: c.lastName.slice(0, n),
        idNumber: c.idNumber.slice(0, n),
        address: c.address.slice(0, n),
        city: c.city.slice(0, n),
      },
      [...this.names],
    );
  }

  private grow(capacity: number) {
    const old = this.c;
    const c = allocate(capacity);
    c.size = old.size;
    for (const key of COLUMN_KEYS) {
      (c[key] as Uint32Array).set((old[key] as Uint32Array).subarray(0, old.size));
    }
    this.c = c;
  }
}

const COLUMN_KEYS = [
  'recordId',
  'dataset',
  'mask',
  'year',
  'month',
  'day',
  'sex',
  'middleInitial',
  'ssn',
  'zip',
  'dobKey',
  'groupHash',
  'codeHash',
  'firstCode',
  'idHash',
  'initials',
  'house',
  'firstName',
  'lastName',
  'idNumber',
  'address',
  'city',
] as const;

function allocate(capacity: number): RecordBatchColumns {
  return {
    size: 0,
    recordId: new Uint32Array(capacity),
    dataset: new Uint16Array(capacity),
    mask: new Uint8Array(capacity),
    year: new Uint16Array(capacity),
    month: new Uint8Array(capacity),
    day: new Uint8Array(capacity),
    sex: new Uint8Array(capacity),
    middleInitial: new Uint8Array(capacity),
    ssn: new Uint32Array(capacity),
    zip: new Uint32Array(capacity),
    dobKey: new Uint32Array(capacity),
    groupHash: new Uint32Array(capacity),
    codeHash: new Uint32Array(capacity),
    firstCode: new Uint32Array(capacity),
    idHash: new Uint32Array(capacity),
    initials: new Uint16Array(capacity),
    house: new Uint32Array(capacity),
    firstName: new Uint32Array(capacity),
    lastName: new Uint32Array(capacity),
    idNumber: new Uint32Array(capacity),
    address: new Uint32Array(capacity),
    city: new Uint32Array(capacity),
  };
}
