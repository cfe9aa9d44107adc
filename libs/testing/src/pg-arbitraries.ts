import fc from 'fast-check';

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** A year PostgreSQL holds (proleptic; 0 and below are BC): the edges of 1 to 9999 and far past them. */
const pgYear = fc.oneof(
  fc.integer({ min: 1, max: 9999 }),
  fc.integer({ min: -4712, max: 0 }),
  fc.integer({ min: 10000, max: 294275 }),
  fc.constantFrom(1, 9999, 1969, 1970, 0, 10000),
);

/**
 * Any instant PostgreSQL's timestamptz holds, as input text in UTC ('YYYY-MM-DD HH:MI:SS.ffffff+00',
 * ' BC' before year 1): BC, AD up to year 294275, and fractions PostgreSQL shortens when it writes
 * them (.5, .12) or keeps whole (.000999); or ±infinity. For the differential tests of how dates and
 * times are written and read back (property-based tests only: test code, not the broker's).
 */
export const pgInstantText: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc
      .record({
        year: pgYear,
        month: fc.integer({ min: 1, max: 12 }),
        day: fc.integer({ min: 1, max: 28 }),
        h: fc.integer({ min: 0, max: 23 }),
        m: fc.integer({ min: 0, max: 59 }),
        s: fc.integer({ min: 0, max: 59 }),
        micro: fc.oneof(
          fc.integer({ min: 0, max: 999_999 }),
          fc.constantFrom(0, 1, 999, 1000, 100_000, 120_000, 500_000, 999_999),
        ),
      })
      .map(
        ({ year, month, day, h, m, s, micro }) =>
          `${pad(year > 0 ? year : 1 - year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(micro, 6)}+00${year > 0 ? '' : ' BC'}`,
      ),
  },
  fc.constantFrom('infinity', '-infinity'),
);

/** A date as PostgreSQL's input text, of any instant of {@link pgInstantText}. */
export const pgDateText: fc.Arbitrary<string> = pgInstantText.map((t) =>
  t.replace(/ \d\d:\d\d:\d\d\.\d+\+00/, ''),
);
