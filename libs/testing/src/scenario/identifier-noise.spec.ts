import { dayNumber, formatDay, isCalendarDate, parseDay } from './civil-date';
import {
  dateTypo,
  foldName,
  formatSsn,
  hasNickname,
  nicknameOf,
  ssnTypo,
  stripAccents,
  styleName,
  swapDayMonth,
  withTypo,
} from './identifier-noise';
import { NICKNAMES } from './name-tables';
import { SeededRandom } from './seeded-random';

describe('identifier noise', () => {
  const random = new SeededRandom('noise-spec');

  it('makes typos that always change a name, of each kind', () => {
    const kinds = new Map<string, number>();
    for (const name of ['Robert', 'María', "O'Brien", 'Lee', 'Anna', 'Ng', 'Aaa']) {
      for (let i = 0; i < 300; i++) {
        const { value, kind } = withTypo(name, random);
        expect(value).not.toBe(name);
        kinds.set(kind!, (kinds.get(kind!) ?? 0) + 1);
        if (kind === 'DELETION') expect(value).toHaveLength(name.length - 1);
        else expect(value).toHaveLength(name.length);
        // Punctuation is left alone: a typo hits letters.
        expect(value.includes("'")).toBe(name.includes("'"));
      }
    }
    expect([...kinds.keys()].sort()).toEqual(['DELETION', 'SUBSTITUTION', 'TRANSPOSITION']);
    expect(withTypo('A', random)).toEqual({ value: 'A', kind: null });
  });

  it('transposes adjacent letters keeping the case of each position', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(withTypo('John', random, ['TRANSPOSITION']).value);
    expect([...seen].sort()).toEqual(['Jhon', 'Jonh', 'Ojhn']);
  });

  it('mistypes SSN digits into other digits', () => {
    for (let i = 0; i < 200; i++) {
      const typo = ssnTypo('123456789', random);
      expect(typo).toMatch(/^\d{9}$/);
      expect(typo).not.toBe('123456789');
    }
    expect(formatSsn('123456789')).toBe('123-45-6789');
  });

  it('finds nicknames of formal names in English and Spanish', () => {
    expect(Object.keys(NICKNAMES).length).toBeGreaterThanOrEqual(60);
    expect(NICKNAMES.Robert).toContain('Bob');
    expect(NICKNAMES.William).toContain('Bill');
    expect(NICKNAMES.Elizabeth).toContain('Liz');
    expect(NICKNAMES['José']).toContain('Pepe');
    expect(hasNickname('Francisco')).toBe(true);
    expect(hasNickname('Bob')).toBe(false);
    expect(NICKNAMES.Guadalupe).toContain(nicknameOf('Guadalupe', random));
    expect(nicknameOf('Zed', random)).toBeNull();
  });

  it('swaps day and month only into a different real date', () => {
    expect(swapDayMonth(1990, 3, 2)).toBe('1990-02-03');
    expect(swapDayMonth(1990, 3, 3)).toBeNull();
    expect(swapDayMonth(1990, 3, 13)).toBeNull();
    expect(swapDayMonth(1990, 12, 11)).toBe('1990-11-12');
  });

  it('mistypes dates into different real dates, never younger by a decade', () => {
    for (const [y, m, d] of [
      [1990, 1, 31],
      [2000, 2, 29],
      [1989, 12, 31],
      [1999, 6, 15],
    ]) {
      for (let i = 0; i < 100; i++) {
        const typo = dateTypo(y, m, d, random);
        expect(typo).not.toBe(formatDay(dayNumber(y, m, d)));
        expect(() => parseDay(typo)).not.toThrow();
        expect(Number(typo.slice(0, 4))).toBeLessThanOrEqual(y + 1);
      }
    }
  });

  it('writes names in the agencies styles', () => {
    expect(styleName("O'Brien", 'UPPER_ASCII')).toBe('OBRIEN');
    expect(styleName("O'Brien", 'UPPER_SPACED')).toBe('O BRIEN');
    expect(styleName("O'Brien", 'UPPER')).toBe("O'BRIEN");
    expect(styleName('José', 'ASCII')).toBe('Jose');
    expect(styleName('Núñez', 'UPPER_ASCII')).toBe('NUNEZ');
    expect(styleName('St. John', 'UPPER_ASCII')).toBe('ST JOHN');
    expect(styleName('De la Cruz', 'LOWER')).toBe('de la cruz');
    expect(styleName('José', 'AS_IS')).toBe('José');
    expect(stripAccents('Álvarez Ibáñez')).toBe('Alvarez Ibanez');
    expect(foldName("O'BRIEN")).toBe(foldName('O Brien'));
    expect(foldName('JOSÉ')).toBe(foldName('jose'));
  });
});

describe('civil dates', () => {
  it('agree with the UTC calendar over two centuries', () => {
    for (let day = dayNumber(1900, 1, 1); day <= dayNumber(2100, 12, 31); day += 17) {
      expect(formatDay(day)).toBe(new Date(day * 86_400_000).toISOString().slice(0, 10));
      expect(parseDay(formatDay(day))).toBe(day);
    }
    expect(isCalendarDate(2024, 2, 29)).toBe(true);
    expect(isCalendarDate(2023, 2, 29)).toBe(false);
    expect(isCalendarDate(1900, 2, 29)).toBe(false);
    expect(() => parseDay('2023-02-29')).toThrow();
  });
});
