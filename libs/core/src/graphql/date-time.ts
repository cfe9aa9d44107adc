import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

const DATETIME_PATTERN =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Whether y-m-d is a date of the proleptic Gregorian calendar within years 1..9999. */
export function validCalendarDate(y: number, m: number, d: number): boolean {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  if (m === 2 && ((y % 4 === 0 && y % 100 !== 0) || y % 400 === 0)) return d <= 29;
  return d <= DAYS_IN_MONTH[m - 1];
}

/** A finite Date as an ISO instant in UTC within years 1..9999, or null. */
function instantOf(at: Date): string | null {
  if (!Number.isFinite(at.getTime())) return null;
  const iso = at.toISOString();
  // Years outside 0001..9999 are written with six digits and a sign, which PostgreSQL reads otherwise.
  return iso.length === 24 && iso.slice(0, 4) !== '0000' ? iso : null;
}

/**
 * An ISO 8601 date-time as `Date#toISOString` writes it, in UTC, or null. Without an offset it is
 * UTC, as in ingestion, so the meaning never depends on a server's zone. Precision beyond the
 * millisecond (what is stored) is refused unless it is zero, since truncating would change `$gte`.
 * A date the calendar does not have (2024-02-30) is refused, never moved to the next month.
 */
export function parseDateTime(value: unknown): string | null {
  if (value instanceof Date) return instantOf(value);
  if (typeof value !== 'string') return null;
  const m = DATETIME_PATTERN.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', fraction = '', zulu, sign, oh, om = '00'] = m;
  if (!validCalendarDate(+y, +mo, +d) || +h > 23 || +mi > 59 || +s > 59) return null;
  if (/[1-9]/.test(fraction.slice(3))) return null;
  let offset = 'Z';
  if (!zulu && sign) {
    if (+oh > 23 || +om > 59) return null;
    offset = `${sign}${oh}:${om}`;
  }
  const millis = fraction.padEnd(3, '0').slice(0, 3);
  return instantOf(new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${millis}${offset}`));
}

const MESSAGE = 'expected an ISO 8601 date-time such as 2025-01-01T00:00:00Z';

function parsed(value: unknown): Date {
  const iso = parseDateTime(value);
  if (!iso) throw new GraphQLError(MESSAGE);
  return new Date(iso);
}

/**
 * The control plane's `DateTime` (in place of @nestjs/graphql's, which reads its input with `new
 * Date(value)`: 2024-02-30 became 1 March, a number a date of 1970, and anything else an invalid
 * date). Input is read by {@link parseDateTime}, or refused; output is the stored instant in UTC.
 */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description:
    'A date-time string at UTC, such as 2019-12-03T09:54:33Z, compliant with the date-time format.',
  parseValue: parsed,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) throw new GraphQLError(MESSAGE);
    return parsed(ast.value);
  },
  serialize(value) {
    const iso =
      value instanceof Date ? instantOf(value) : typeof value === 'string' ? parseDateTime(value) : null;
    if (!iso) throw new GraphQLError('DateTime cannot represent this value');
    return iso;
  },
});
