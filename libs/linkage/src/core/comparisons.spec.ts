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
} from './comparisons';

describe('comparisons', () => {
  it('levels dates of birth: exact, day and month swapped, one typo, two of three, different, missing', () => {
    expect(dobLevel(1987, 3, 2, 1987, 3, 2)).toBe(0);
    expect(dobLevel(1987, 3, 2, 1987, 2, 3)).toBe(1);
    expect(dobLevel(1987, 3, 2, 1977, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1988, 3, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 3, 3)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 4, 2)).toBe(2);
    expect(dobLevel(1987, 3, 2, 1987, 3, 9)).toBe(3);
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
});
