import type { FieldTransform, FieldType, RowFilterJson } from '../api/schema';

/** An instant as people read it here: UTC, to the minute (the broker's windows are in UTC). */
export function formatInstant(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** An instant's UTC day, 'YYYY-MM-DD'. */
export function formatDay(iso: string | null | undefined): string {
  if (!iso) return '—';
  return iso.slice(0, 10);
}

/** An `<input type="date">` value as the broker's DateTime: midnight UTC of that day. */
export function dayToInstant(day: string): string | null {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? `${day}T00:00:00.000Z` : null;
}

export function formatNumber(n: number | null | undefined): string {
  return n == null ? '—' : n.toLocaleString('en-US');
}

/** A label for an enum value: `AGGREGATE_ONLY` → `Aggregate only`. */
export function humanize(value: string): string {
  const text = value.replace(/_/g, ' ').toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The name under which a transform releases a field (DESIGN's transform table), to label the form
 * as it is filled; the broker's preview is the authority.
 */
export function releasedName(name: string, type: FieldType, transform: FieldTransform): string | null {
  switch (transform) {
    case 'RAW':
      return name;
    case 'HASH':
      return `${name}_hash`;
    case 'GENERALIZE':
      if (type === 'DATE' || type === 'DATETIME') return `${name}_year`;
      if (type === 'INTEGER' || type === 'FLOAT') return `${name}_band`;
      if (type === 'STRING') return `${name}_prefix`;
      return null;
  }
}

const OPERATORS: Record<string, string> = {
  $eq: '=',
  $ne: '≠',
  $gt: '>',
  $gte: '≥',
  $lt: '<',
  $lte: '≤',
  $in: 'in',
  $nin: 'not in',
};

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `(${value.map(describeValue).join(', ')})`;
  return typeof value === 'string' ? `"${value}"` : String(value);
}

/** A row filter in words: `program in ("JOBS", "HOUSING") and age ≥ 18`. */
export function describeRowFilter(filter: RowFilterJson | null | undefined): string {
  if (!filter || Object.keys(filter).length === 0) return 'every row';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if ((key === '$and' || key === '$or') && Array.isArray(value)) {
      const inner = value.map((v) => describeRowFilter(v as RowFilterJson));
      parts.push(`(${inner.join(key === '$and' ? ' and ' : ' or ')})`);
    } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const [op, operand] of Object.entries(value as Record<string, unknown>)) {
        parts.push(`${key} ${OPERATORS[op] ?? op} ${describeValue(operand)}`);
      }
    } else {
      parts.push(`${key} = ${describeValue(value)}`);
    }
  }
  return parts.join(' and ');
}
