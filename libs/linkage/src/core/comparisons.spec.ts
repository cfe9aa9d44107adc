import fc from 'fast-check';
import {
  COMPARISONS,
  LEVELS,
  PATTERNS,
  decodePattern,
  dobLevel,
  encodePattern,
  ssnLevel,
  ssnOneTypo,
  textOneTypo,
} from './comparisons';
import { normaliseChunk } from './pipeline';
import { PartitionScorer } from './scorer';
import { emptyIdentityValues } from './identity-fields';

describe('comparisons', () => {
  it('levels dates of birth: exact, day and month swapped, one typo, two of three, different, missing', () => {
    expect(dobLevel(1987, 3, 2, 1987, 3, 2)).toBe(0);
    expect(dobLevel(1987, 3, 2, 1987, 2, 3)).toBe(1);
    expect(dobLevel(1987, 3, 2, 1977, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1988, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 3, 3)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 4, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 3, 19)).toBe(3);
    // A digit keyed or read wrongly, or two adjacent digits exchanged, anywhere in YYYYMMDD.
    expect(dobLevel(1987, 3, 2, 1987, 3, 9)).toBe(2);
    expect(dobLevel(1987, 3, 12, 1987, 3, 21)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1978, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1981, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 8, 2)).toBe(2);
    expect(dobLevel(1987, 1, 23, 1987, 12, 3)).toBe(4);
    expect(dobLevel(1987, 3, 2, 1962, 3, 2)).toBe(3);
    expect(dobLevel(1987, 3, 2, 1990, 5, 7)).toBe(4);
    expect(dobLevel(0, 0, 0, 1990, 5, 7)).toBe(5);
  });

  it('levels SSNs: exact, one typo (a digit, or two adjacent digits swapped), different, missing', () => {
    expect(ssnLevel(123456789, 123456789)).toBe(0);
    expect(ssnLevel(123456789, 123456788)).toBe(1);
    expect(ssnLevel(123456789, 213456789)).toBe(1);
    expect(ssnLevel(123456789, 123456798)).toBe(1);
    expect(ssnLevel(123456789, 321456789)).toBe(2);
    expect(ssnLevel(123456789, 123456700)).toBe(2);
    expect(ssnLevel(0, 123456789)).toBe(3);
    expect(ssnOneTypo(100000001, 100000010)).toBe(true);
    expect(ssnOneTypo(100000001, 100000100)).toBe(false);
  });

  it('packs comparison vectors into patterns and back', () => {
    expect(PATTERNS).toBe(LEVELS.reduce((n, l) => n * (l + 1), 1));
    fc.assert(
      fc.property(
        fc.tuple(...COMPARISONS.map((c) => fc.integer({ min: 0, max: c.levels.length }))),
        (levels) => {
          const pattern = encodePattern(levels);
          expect(pattern).toBeGreaterThanOrEqual(0);
          expect(pattern).toBeLessThan(PATTERNS);
          expect(decodePattern(pattern)).toEqual(levels);
        },
      ),
    );
  });

  it('finds ids and postal codes one typo apart: a character changed, added, dropped or two exchanged', () => {
    expect(textOneTypo('AB123456', 'AB123457')).toBe(true);
    expect(textOneTypo('AB123456', 'AB124356')).toBe(true);
    expect(textOneTypo('AB123456', 'AB12456')).toBe(true);
    expect(textOneTypo('AB12456', 'AB123456')).toBe(true);
    expect(textOneTypo('AB123456', 'AB214356')).toBe(false);
    expect(textOneTypo('AB123456', 'AB123465X')).toBe(false);
    expect(textOneTypo('3012AB', '3021AB')).toBe(true);
  });

  it('sees swapped given names and surnames, initials, and leaves missing values missing', () => {
    const row = (
      first: string | null,
      last: string | null,
      extra: Partial<ReturnType<typeof emptyIdentityValues>> = {},
    ) => ({
      ...emptyIdentityValues(),
      firstName: first,
      lastName: last,
      ...extra,
    });
    const batch = normaliseChunk(
      0,
      0,
      [
        row('Minh', 'Nguyen', { idNumber: 'AB123456', zip: '3012 AB', city: 'Delft' }),
        row('NGUYEN', 'MINH', { idNumber: 'ab-123465', zip: '3021AB', city: null }),
        row('M', 'Nguyen'),
        row(null, 'Nguyen'),
      ],
      1,
    ).records;
    const scorer = new PartitionScorer(batch);
    const order = Array.from(scorer.prepared.batch.recordId);
    const at = (recordId: number) => order.indexOf(recordId);
    scorer.pattern(at(0), at(1));
    // Swapped: both names exact crosswise; the id and the postal code one typo apart; no city.
    expect(Array.from(scorer.levels.slice(0, COMPARISONS.length))).toEqual([0, 0, 5, 3, 2, 1, 2, 1, 3, 3]);
    scorer.pattern(at(0), at(2));
    expect(Array.from(scorer.levels.slice(0, 2))).toEqual([3, 0]);
    scorer.pattern(at(0), at(3));
    expect(Array.from(scorer.levels.slice(0, 2))).toEqual([5, 0]);
  });

  it('sees a record with one name written in the other field', () => {
    const row = (first: string | null, last: string | null) => ({
      ...emptyIdentityValues(),
      firstName: first,
      lastName: last,
    });
    const batch = normaliseChunk(
      0,
      0,
      [row('Hiroshi', 'Lindqvist'), row('Lindqvist', null), row(null, 'Hiroshi'), row('Lars', null)],
      1,
    ).records;
    const scorer = new PartitionScorer(batch);
    const order = Array.from(scorer.prepared.batch.recordId);
    const levels = (a: number, b: number) => {
      scorer.pattern(order.indexOf(a), order.indexOf(b));
      return Array.from(scorer.levels.slice(0, 2));
    };
    // The surname written as the given name: the surname agrees, the given name is missing.
    expect(levels(0, 1)).toEqual([5, 0]);
    expect(levels(1, 0)).toEqual([5, 0]);
    // The given name written as the surname.
    expect(levels(0, 2)).toEqual([0, 5]);
    // A name that matches neither stays as it was written.
    expect(levels(0, 3)).toEqual([4, 5]);
  });

  it('believes a swap when the names agree crosswise, one exactly or both closely, not on one likeness', () => {
    const row = (first: string, last: string) => ({
      ...emptyIdentityValues(),
      firstName: first,
      lastName: last,
    });
    const batch = normaliseChunk(
      0,
      0,
      [row('Minh', 'Nguyen'), row('Tran', 'Minh'), row('Tran', 'Mihn'), row('Ngyuen', 'Mihn')],
      1,
    ).records;
    const scorer = new PartitionScorer(batch);
    const order = Array.from(scorer.prepared.batch.recordId);
    const levels = (a: number, b: number) => {
      scorer.pattern(order.indexOf(a), order.indexOf(b));
      return [...Array.from(scorer.levels.slice(0, 2)), scorer.swapped];
    };
    expect(levels(0, 1)).toEqual([0, 4, true]);
    expect(levels(0, 2)).toEqual([4, 4, false]);
    expect(levels(0, 3)).toEqual([2, 2, true]);
  });

  it('gives a pair the same levels whichever record comes first, names swapped and mistyped too', () => {
    const name = fc.constantFrom(
      'Aisha',
      'Jabari',
      'Jobari',
      'AISHA',
      'Aysha',
      'Minh',
      'Nguyen',
      'Ngyuen',
      'M',
      null,
    );
    const row = fc.record({
      firstName: name,
      lastName: name,
      dateOfBirth: fc.constantFrom('1999-12-07', '1963-10-21', '1999-07-12', null),
      idNumber: fc.constantFrom('GG688240', 'GG688204', null),
    });
    fc.assert(
      fc.property(row, row, (x, y) => {
        const batch = normaliseChunk(
          0,
          0,
          [x, y].map((r) => ({ ...emptyIdentityValues(), ...r })),
          1,
        ).records;
        const scorer = new PartitionScorer(batch);
        expect(scorer.pattern(0, 1)).toBe(scorer.pattern(1, 0));
      }),
      { numRuns: 300 },
    );
  });
});
