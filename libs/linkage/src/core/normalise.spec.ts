import { jaroWinkler } from './jaro-winkler';
import { nameGroup } from './nicknames';
import {
  foldGivenName,
  foldName,
  normaliseIdentity,
  parseDateOfBirth,
  parseSex,
  parseAddress,
  parseIdNumber,
  parsePostalCode,
  parseSsn,
  unparsedRoles,
} from './normalise';
import { emptyUnparsedCounts } from './identity-fields';
import { nysiis } from './phonetic';

describe('normalisation', () => {
  it('folds names: case, accents, punctuation and spacing, keeping one hyphen between surnames', () => {
    expect(foldName("O'Brien")).toBe('obrien');
    expect(foldName('O BRIEN')).toBe('obrien');
    expect(foldName('Núñez')).toBe('nunez');
    expect(foldName('DE LA CRUZ')).toBe('delacruz');
    expect(foldName('St. John')).toBe('stjohn');
    expect(foldName('García-Smith')).toBe('garcia-smith');
    expect(foldName(' -García - - Smith- ')).toBe('garcia-smith');
    expect(foldName('Strauß')).toBe('strauss');
    expect(foldGivenName('Mary-Ann')).toBe('maryann');
    expect(foldGivenName(null)).toBe('');
  });

  it('reads dates of birth from DATE and DATETIME text, refusing impossible dates', () => {
    expect(parseDateOfBirth('1987-03-02')).toEqual({ year: 1987, month: 3, day: 2 });
    expect(parseDateOfBirth('1987-03-02T00:00:00.000Z')).toEqual({ year: 1987, month: 3, day: 2 });
    expect(parseDateOfBirth('2000-02-29')).toEqual({ year: 2000, month: 2, day: 29 });
    expect(parseDateOfBirth('1987-03-02 00:00:00')).toEqual({ year: 1987, month: 3, day: 2 });
    // Impossible dates, other forms, and dates whose day runs on ("1990-1-010", "1990-10-1O").
    const bad = ['1900-02-29', '1987-13-01', '1987-04-31', '03/02/1987', '', null, '1700-01-01'];
    for (const value of [...bad, '1990-1-010', '1990-10-1O']) {
      expect(parseDateOfBirth(value)).toEqual({ year: 0, month: 0, day: 0 });
    }
  });

  it('reads SSNs with or without dashes, refusing placeholders and impossible numbers', () => {
    expect(parseSsn('123-45-6789')).toBe(123456789);
    expect(parseSsn('123456789')).toBe(123456789);
    expect(parseSsn('123 45 6789')).toBe(123456789);
    for (const bad of [
      '000-12-3456',
      '666-12-3456',
      '912-34-5678',
      '123-00-4567',
      '123-45-0000',
      '111111111',
      '12345678',
      'abc',
      null,
    ]) {
      expect(parseSsn(bad)).toBe(0);
    }
  });

  it('reads sex as a letter or a word, and postal codes of any country', () => {
    expect([
      parseSex('M'),
      parseSex('male'),
      parseSex('F'),
      parseSex('Female'),
      parseSex('X'),
      parseSex(null),
    ]).toEqual([1, 1, 2, 2, 0, 0]);
    expect([
      parsePostalCode('93301'),
      parsePostalCode('93301-1234'),
      parsePostalCode('933011234'),
      parsePostalCode('3012 ab'),
      parsePostalCode('SW1A 1AA'),
      parsePostalCode('2000'),
      parsePostalCode('00000'),
      parsePostalCode(' - '),
      parsePostalCode(null),
    ]).toEqual(['93301', '93301', '93301', '3012AB', 'SW1A1AA', '2000', '', '', '']);
  });

  it('reads other person ids in any alphabet and format, and street lines as words', () => {
    expect([
      parseIdNumber('ab-123 456'),
      parseIdNumber('1234567'),
      parseIdNumber('D1234-5678-9'),
      parseIdNumber('Ä12'),
      parseIdNumber('0000000'),
      parseIdNumber('x'),
      parseIdNumber(null),
    ]).toEqual(['AB123456', '1234567', 'D123456789', 'A12', '', '', '']);
    expect(parseAddress('12, Main St.  Apt 4')).toBe('12 main st apt 4');
    expect(parseAddress('Rue de l’Église 3')).toBe('rue de l eglise 3');
    expect(parseAddress(' ,. ')).toBe('');
  });

  it('counts the values present but not understood, role by role', () => {
    const counts = emptyUnparsedCounts();
    const values = {
      firstName: '???',
      middleName: null,
      lastName: 'Lee',
      dateOfBirth: '1990-02-30',
      sex: 'unknown',
      ssn: '1234567',
      zip: '--',
      idNumber: '1234567',
      address: '',
      city: 'Delano',
    };
    unparsedRoles(values, normaliseIdentity(values), counts);
    unparsedRoles(values, normaliseIdentity(values), counts);
    expect(counts).toEqual({
      FIRST_NAME: 2,
      MIDDLE_NAME: 0,
      LAST_NAME: 0,
      DATE_OF_BIRTH: 2,
      SEX: 2,
      SSN: 2,
      ZIP: 2,
      ID_NUMBER: 0,
      ADDRESS: 0,
      CITY: 0,
    });
  });

  it('normalises a record', () => {
    expect(
      normaliseIdentity({
        firstName: 'José',
        middleName: 'J.',
        lastName: 'García-Smith',
        dateOfBirth: '1990-05-06',
        sex: 'Male',
        ssn: '123-45-6789',
        zip: '93305',
        idNumber: 'ca-d1234567',
        address: '100 Truxtun Ave.',
        city: 'Bakersfield',
      }),
    ).toEqual({
      first: 'jose',
      last: 'garcia-smith',
      middleInitial: 'j'.charCodeAt(0),
      year: 1990,
      month: 5,
      day: 6,
      sex: 1,
      ssn: 123456789,
      zip: '93305',
      idNumber: 'CAD1234567',
      address: '100 truxtun ave',
      city: 'bakersfield',
    });
  });
});

describe('name groups, phonetic code and Jaro-Winkler', () => {
  it('groups nicknames with their formal names, English and Spanish', () => {
    expect(nameGroup('bob')).toBe(nameGroup('robert'));
    expect(nameGroup('bobby')).toBe(nameGroup('robert'));
    expect(nameGroup('paco')).toBe(nameGroup('francisco'));
    expect(nameGroup('lupe')).toBe(nameGroup('guadalupe'));
    expect(nameGroup('pat')).toBe(nameGroup('patricia'));
    expect(nameGroup('robert')).not.toBe(nameGroup('william'));
    expect(nameGroup('zyxw')).toBe('zyxw');
  });

  it('codes names as NYSIIS does (Apache commons-codec reference cases)', () => {
    const cases: [string, string][] = [
      ['brian', 'bran'],
      ['brown', 'bran'],
      ['capp', 'cap'],
      ['kipp', 'cap'],
      ['dionne', 'dan'],
      ['smith', 'snat'],
      ['schmit', 'snat'],
      ['schmidt', 'snad'],
      ['phil', 'fal'],
      ['macintosh', 'mcant'],
      ['knight', 'nagt'],
    ];
    for (const [name, code] of cases) expect([name, nysiis(name)]).toEqual([name, code]);
    expect(nysiis('hernandez')).toBe(nysiis('hernandes'));
    expect(nysiis('')).toBe('');
  });

  it('computes Jaro-Winkler as Winkler defines it', () => {
    expect(jaroWinkler('martha', 'marhta')).toBeCloseTo(0.9611, 4);
    expect(jaroWinkler('dwayne', 'duane')).toBeCloseTo(0.84, 4);
    expect(jaroWinkler('dixon', 'dicksonx')).toBeCloseTo(0.8133, 4);
    expect(jaroWinkler('abc', 'abc')).toBe(1);
    expect(jaroWinkler('abc', 'xyz')).toBe(0);
    expect(jaroWinkler('', '')).toBe(0);
    expect(jaroWinkler('jon', 'john')).toBeGreaterThan(jaroWinkler('jon', 'jane'));
  });
});
