import { recordIdOf } from './pipeline';
import { RecordBatch } from './record-batch';
import { RecordIdMap, batchWithout } from './without-records';

const identity = (first: string, last: string) => ({
  first,
  last,
  middleInitial: 0,
  year: 1990,
  month: 1,
  day: 2,
  sex: 0,
  ssn: 0,
  zip: '',
  idNumber: '',
  address: '',
  city: 'leeds',
});

/** Chunk `chunk` of records named `names` ("first last"). */
const chunkOf = (chunk: number, names: string[]) => {
  const builder = RecordBatch.builder(names.length);
  names.forEach((n, i) =>
    builder.push(recordIdOf(chunk, i), 0, 0, identity(...(n.split(' ') as [string, string]))),
  );
  return builder.build();
};

describe('a run without some of its records', () => {
  // Chunk 1 loses its records 1 and 3 (of 5); chunk 0 keeps all of its own.
  const ids = new RecordIdMap();
  ids.drop(1, 5, new Set([1, 3]));

  it('renumbers the records a chunk keeps, and forgets the names of those it loses', () => {
    expect(
      [recordIdOf(0, 4), recordIdOf(1, 0), recordIdOf(1, 1), recordIdOf(1, 2), recordIdOf(1, 4)].map((id) =>
        ids.map(id),
      ),
    ).toEqual([recordIdOf(0, 4), recordIdOf(1, 0), -1, recordIdOf(1, 1), recordIdOf(1, 2)]);
    const batch = batchWithout(
      chunkOf(1, ['ada okafor', 'boris novak', 'celia rossi', 'dmitri sato', 'edna rossi']),
      ids,
    );
    const copy = RecordBatch.deserialise(batch.serialise());
    expect([...copy.recordId]).toEqual([recordIdOf(1, 0), recordIdOf(1, 1), recordIdOf(1, 2)]);
    expect([0, 1, 2].map((i) => `${copy.first(i)} ${copy.last(i)}`)).toEqual([
      'ada okafor',
      'celia rossi',
      'edna rossi',
    ]);
    expect(copy.names).not.toContain('boris');
    expect(copy.names).not.toContain('sato');
    // As the chunk normalised without them would be.
    expect(copy.serialise()).toEqual(chunkOf(1, ['ada okafor', 'celia rossi', 'edna rossi']).serialise());
  });
});
