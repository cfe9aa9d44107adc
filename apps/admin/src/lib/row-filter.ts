/**
 * The row-filter builder's model: a list of conditions joined by "all" or "any", turned into the
 * agreement's row filter (`{"f": {"$op": v}}`, `$and`, `$or`) and back. Filters the builder cannot
 * show (nested groups) are edited as JSON instead.
 */
import type { DatasetField, RowFilterJson } from '../api/schema';

export type FilterOperator = '$eq' | '$ne' | '$gt' | '$gte' | '$lt' | '$lte' | '$in' | '$nin';

export const FILTER_OPERATORS: { value: FilterOperator; label: string }[] = [
  { value: '$eq', label: 'equals' },
  { value: '$ne', label: 'does not equal' },
  { value: '$gt', label: 'is greater than' },
  { value: '$gte', label: 'is at least' },
  { value: '$lt', label: 'is less than' },
  { value: '$lte', label: 'is at most' },
  { value: '$in', label: 'is one of' },
  { value: '$nin', label: 'is none of' },
];

export interface FilterCondition {
  field: string;
  op: FilterOperator;
  /** As typed; lists (one of, none of) are comma-separated. */
  value: string;
}

export interface FilterDraft {
  mode: 'builder' | 'json';
  join: '$and' | '$or';
  conditions: FilterCondition[];
  json: string;
}

export const EMPTY_FILTER: FilterDraft = { mode: 'builder', join: '$and', conditions: [], json: '' };

const OPS = new Set<string>(FILTER_OPERATORS.map((o) => o.value));

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueText(value: unknown): string | null {
  if (Array.isArray(value)) {
    const items = value.map(valueText);
    return items.every((i): i is string => i !== null) ? items.join(', ') : null;
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
    return String(value);
  return null;
}

/** The conditions of one `{ field: v }` or `{ field: { $op: v, ... } }` object, or null if it is more. */
function conditionsOf(node: Record<string, unknown>): FilterCondition[] | null {
  const out: FilterCondition[] = [];
  for (const [field, raw] of Object.entries(node)) {
    if (field.startsWith('$')) return null;
    if (isPlainObject(raw)) {
      for (const [op, operand] of Object.entries(raw)) {
        const text = valueText(operand);
        if (!OPS.has(op) || text === null || Array.isArray(operand) !== (op === '$in' || op === '$nin'))
          return null;
        out.push({ field, op: op as FilterOperator, value: text });
      }
    } else {
      const text = valueText(raw);
      if (text === null || Array.isArray(raw)) return null;
      out.push({ field, op: '$eq', value: text });
    }
  }
  return out;
}

/** The builder's view of a stored row filter; JSON mode when the builder cannot show it. */
export function draftFromFilter(filter: RowFilterJson | null | undefined): FilterDraft {
  if (!filter || Object.keys(filter).length === 0) return EMPTY_FILTER;
  const json = JSON.stringify(filter, null, 2);
  const keys = Object.keys(filter);
  if (keys.length === 1 && (keys[0] === '$and' || keys[0] === '$or') && Array.isArray(filter[keys[0]])) {
    const items = filter[keys[0]] as unknown[];
    const conditions: FilterCondition[] = [];
    for (const item of items) {
      const found = isPlainObject(item) ? conditionsOf(item) : null;
      // An "any" group holds one condition per member, or it means something else.
      if (!found || (keys[0] === '$or' && found.length !== 1)) return { ...EMPTY_FILTER, mode: 'json', json };
      conditions.push(...found);
    }
    return { mode: 'builder', join: keys[0], conditions, json };
  }
  const conditions = conditionsOf(filter);
  return conditions
    ? { mode: 'builder', join: '$and', conditions, json }
    : { ...EMPTY_FILTER, mode: 'json', json };
}

function typedValue(
  text: string,
  field: DatasetField,
): { value?: string | number | boolean; problem?: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { problem: `Give a value for ${field.name}` };
  switch (field.type) {
    case 'INTEGER':
    case 'FLOAT': {
      const n = Number(trimmed);
      if (!Number.isFinite(n) || (field.type === 'INTEGER' && !Number.isInteger(n))) {
        return {
          problem: `${field.name} takes ${field.type === 'INTEGER' ? 'whole numbers' : 'numbers'}: "${trimmed}" is not one`,
        };
      }
      return { value: n };
    }
    case 'BOOLEAN':
      if (trimmed !== 'true' && trimmed !== 'false') return { problem: `${field.name} takes true or false` };
      return { value: trimmed === 'true' };
    case 'DATE':
    case 'DATETIME':
    case 'STRING':
      return { value: trimmed };
  }
}

/** The row filter the draft describes, or the first problem that keeps it from being one. */
export function filterFromDraft(
  draft: FilterDraft,
  fields: DatasetField[],
): { filter: RowFilterJson | null; problem: string | null } {
  if (draft.mode === 'json') {
    if (!draft.json.trim()) return { filter: null, problem: null };
    try {
      const parsed = JSON.parse(draft.json) as unknown;
      if (!isPlainObject(parsed)) return { filter: null, problem: 'The row filter must be a JSON object' };
      return { filter: parsed, problem: null };
    } catch (error) {
      return { filter: null, problem: `The row filter is not valid JSON: ${(error as Error).message}` };
    }
  }
  const nodes: RowFilterJson[] = [];
  for (const condition of draft.conditions) {
    const field = fields.find((f) => f.name === condition.field);
    if (!field) return { filter: null, problem: 'Choose a field for every condition' };
    const list = condition.op === '$in' || condition.op === '$nin';
    const texts = list ? condition.value.split(',').filter((t) => t.trim() !== '') : [condition.value];
    if (texts.length === 0) return { filter: null, problem: `Give at least one value for ${field.name}` };
    const values: (string | number | boolean)[] = [];
    for (const text of texts) {
      const typed = typedValue(text, field);
      if (typed.problem !== undefined) return { filter: null, problem: typed.problem };
      values.push(typed.value!);
    }
    nodes.push({ [field.name]: { [condition.op]: list ? values : values[0] } });
  }
  if (nodes.length === 0) return { filter: null, problem: null };
  if (nodes.length === 1) return { filter: nodes[0], problem: null };
  return { filter: { [draft.join]: nodes }, problem: null };
}
