import { recordIdOf, termFrequencies } from './pipeline';
import { RecordBatch } from './record-batch';
import {
  RecordIdMap,
  batchWithout,
  linksWithout,
  reviewPairsWithout,
  termFrequenciesWithout,
} from './without-records';

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
    const gone: RecordBatch[] = [];
    const batch = batchWithout(
      chunkOf(1, ['ada okafor', 'boris novak', 'celia rossi', 'dmitri sato', 'edna rossi']),
      ids,
      gone,
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
    expect(gone.map((g) => g.size)).toEqual([2]);
  });

  it('drops the links and pairs for review naming a record that is gone, and renumbers the others', () => {
    const links = linksWithout(
      {
        size: 3,
        a: Uint32Array.from([recordIdOf(0, 1), recordIdOf(0, 2), recordIdOf(1, 2)]),
        b: Uint32Array.from([recordIdOf(1, 4), recordIdOf(1, 3), recordIdOf(1, 4)]),
        weight: Float32Array.from([9, 8, 7]),
      },
      ids,
    );
    expect([[...links.a], [...links.b], [...links.weight]]).toEqual([
      [recordIdOf(0, 1), recordIdOf(1, 1)],
      [recordIdOf(1, 2), recordIdOf(1, 2)],
      [9, 7],
    ]);
    expect(
      reviewPairsWithout(
        [
          { a: recordIdOf(1, 1), b: recordIdOf(1, 2), pattern: 1, weight: 3 },
          { a: recordIdOf(0, 0), b: recordIdOf(1, 4), pattern: 2, weight: 4 },
        ],
        ids,
      ),
    ).toEqual([{ a: recordIdOf(0, 0), b: recordIdOf(1, 2), pattern: 2, weight: 4 }]);
  });

  it('counts the names of the records that are gone once less', () => {
    const kept = chunkOf(0, ['ada rossi', 'ada sato']);
    const gone = chunkOf(1, ['ada rossi', 'boris rossi']);
    const tf = termFrequenciesWithout(termFrequencies([kept, gone]), [gone]);
    expect(tf).toEqual(termFrequencies([kept]));
  });
});
