import { RecordBatch } from './record-batch';

const identity = (first: string, last: string, ssn = 0) => ({
  first,
  last,
  middleInitial: 106,
  year: 1990,
  month: 12,
  day: 31,
  sex: 2,
  ssn,
  zip: '93301',
  idNumber: ssn ? 'X7' : '',
  address: '',
  city: 'bakersfield',
});

describe('RecordBatch', () => {
  it('round-trips through bytes, column by column', () => {
    const builder = RecordBatch.builder(1);
    builder.push(5, 3, 1, identity('maria', 'garcia-smith', 123456789));
    builder.push((4095 << 20) + 1_048_575, 65_000, 7, identity('', ''));
    builder.push(7, 0, 2, identity('jose', 'nunez'));
    const batch = builder.build();
    const copy = RecordBatch.deserialise(batch.serialise());
    expect(copy.size).toBe(3);
    for (let i = 0; i < 3; i++) {
      expect(copy.identity(i)).toEqual(batch.identity(i));
      expect([copy.recordId[i], copy.dataset[i], copy.mask[i]]).toEqual([
        batch.recordId[i],
        batch.dataset[i],
        batch.mask[i],
      ]);
    }
    expect(copy.recordId[1]).toBe(4095 * 2 ** 20 + 1_048_575);
  });

  it('round-trips an empty batch and concatenates batches in order', () => {
    expect(RecordBatch.deserialise(RecordBatch.builder(0).build().serialise()).size).toBe(0);
    const a = RecordBatch.builder(1);
    a.push(1, 0, 0, identity('ana', 'lopez'));
    const b = RecordBatch.builder(1);
    b.push(2, 1, 0, identity('bob', 'smith'));
    b.push(3, 1, 0, identity('eve', 'jones'));
    const both = RecordBatch.concat([a.build(), b.build()]);
    expect(Array.from(both.recordId)).toEqual([1, 2, 3]);
    expect([0, 1, 2].map((i) => both.first(i))).toEqual(['ana', 'bob', 'eve']);
    expect(both.names).toEqual(['', 'ana', 'lopez', '93301', 'bakersfield', 'bob', 'smith', 'eve', 'jones']);
    expect([0, 1, 2].map((i) => both.identity(i).zip)).toEqual(['93301', '93301', '93301']);
  });

  it('refuses bytes that are not a batch, or are cut short', () => {
    expect(() => RecordBatch.deserialise(Buffer.from('nonsense, not a batch'))).toThrow(
      'not a linkage record batch',
    );
    const bytes = RecordBatch.builder(1).build().serialise();
    const builder = RecordBatch.builder(1);
    builder.push(1, 0, 0, identity('ana', 'lopez'));
    const full = builder.build().serialise();
    expect(() => RecordBatch.deserialise(full.subarray(0, full.length - 2))).toThrow();
    expect(bytes.length).toBeGreaterThan(0);
  });
});
