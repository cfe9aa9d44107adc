import type { RowFilter } from '@broker/policy';
import type { RegisterRowFilterField } from './register.types';

/**
 * The fields a row filter reads and the operators it applies to each, sorted; `{"f": v}` is `$eq`.
 * The values compared with are left out: they could name people or places.
 */
export function rowFilterShape(filter: RowFilter | null): {
  fields: RegisterRowFilterField[];
  combines: ('$and' | '$or')[];
} | null {
  if (!filter) return null;
  const fields = new Map<string, Set<string>>();
  const combines = new Set<'$and' | '$or'>();
  const walk = (node: RowFilter) => {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$and' || key === '$or') {
        combines.add(key);
        for (const child of (value as RowFilter[]) ?? []) walk(child);
        continue;
      }
      const operators = fields.get(key) ?? new Set<string>();
      fields.set(key, operators);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        for (const op of Object.keys(value)) operators.add(op);
      } else operators.add('$eq');
    }
  };
  walk(filter);
  return {
    fields: [...fields.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([field, ops]) => ({ field, operators: [...ops].sort() })),
    combines: [...combines].sort(),
  };
}
