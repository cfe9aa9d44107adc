import fc from 'fast-check';
import { Kind } from 'graphql';
import { DateTimeScalar, parseDateTime } from './date-time';

describe('the control plane DateTime', () => {
  it('refuses a date the calendar does not have, a number, and anything not ISO 8601', () => {
    for (const value of [
      '2024-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2024-13-01T00:00:00Z',
      5,
      'x',
      '',
      null,
    ]) {
      expect(() => DateTimeScalar.parseValue(value)).toThrow('expected an ISO 8601 date-time');
    }
    expect(() => DateTimeScalar.parseLiteral({ kind: Kind.INT, value: '5' })).toThrow();
    expect(() => DateTimeScalar.parseLiteral({ kind: Kind.STRING, value: '2024-02-30T00:00:00Z' })).toThrow();
  });

  it('reads every instant of years 1..9999 as written, to the millisecond (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0001-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (at) => {
          const iso = at.toISOString();
          expect(DateTimeScalar.parseValue(iso).toISOString()).toBe(iso);
          expect(DateTimeScalar.serialize(at)).toBe(iso);
          expect(parseDateTime(iso.replace('Z', '+00:00'))).toBe(iso);
        },
      ),
    );
    expect(DateTimeScalar.parseValue('2024-02-29T23:00:00-01:00').toISOString()).toBe(
      '2024-03-01T00:00:00.000Z',
    );
  });
});
