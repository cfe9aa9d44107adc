import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

function validDate(value: string): boolean {
  const m = DATE.exec(value);
  if (!m) return false;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCFullYear() === +m[1] && d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3];
}

function parseDate(value: unknown): string {
  if (typeof value !== 'string' || !validDate(value)) throw new GraphQLError("Date must be 'YYYY-MM-DD'");
  return value;
}

function parseDateTime(value: unknown): string {
  if (typeof value !== 'string' || !DATETIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw new GraphQLError('DateTime must be ISO 8601 with an offset, such as 2024-05-01T13:45:00Z');
  }
  return new Date(value).toISOString();
}

/** `Date`: 'YYYY-MM-DD'. Values leave the database already in this form. */
export const DateScalar = new GraphQLScalarType({
  name: 'Date',
  description: "A calendar date, 'YYYY-MM-DD'.",
  serialize: (value) => value,
  parseValue: parseDate,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError("Date must be a string 'YYYY-MM-DD'");
    return parseDate(ast.value);
  },
});

/** `DateTime`: ISO 8601 in UTC. Values leave the database already in this form. */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  description: 'An instant, ISO 8601 (UTC on output).',
  serialize: (value) => value,
  parseValue: parseDateTime,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string');
    return parseDateTime(ast.value);
  },
});
