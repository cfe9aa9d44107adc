/**
 * Agreement row filters (DESIGN §4.1 GrantInput.rowFilter): parsed from untrusted JSON into a tree
 * that the SQL compiler reads, and into the canonical JSON that the agreement version stores.
 */
import type { FieldDefinition } from '@broker/registry';
import {
  parseBoolean,
  parseDate,
  parseDateTime,
  parseFloat64,
  parseInt32,
  parseText,
  type Parsed,
} from './field-value';
import type {
  DatasetShape,
  FieldTypeName,
  RowFilter,
  RowFilterOperators,
  RowFilterValue,
} from './policy.types';
import {
  FORBIDDEN_KEYS,
  type InputProblem,
  ProblemList,
  keyPath,
  ownArray,
  ownFields,
} from './untrusted-input';

export const MAX_ROW_FILTER_DEPTH = 8;
export const MAX_ROW_FILTER_NODES = 200;
export const MAX_ROW_FILTER_LIST = 1000;

/** A comparison of a raw field with one value. */
export type RowFilterComparison = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';

/** A parsed row filter: every field known, every value of its field's type. */
export type RowFilterNode =
  | { kind: 'and' | 'or'; children: RowFilterNode[] }
  | { kind: 'compare'; field: FieldDefinition; op: RowFilterComparison; value: RowFilterValue }
  | { kind: 'in' | 'nin'; field: FieldDefinition; values: RowFilterValue[] };

const COMPARISONS: ReadonlyMap<string, RowFilterComparison> = new Map([
  ['$eq', 'eq'],
  ['$ne', 'ne'],
  ['$gt', 'gt'],
  ['$gte', 'gte'],
  ['$lt', 'lt'],
  ['$lte', 'lte'],
]);
const RANGES: ReadonlySet<RowFilterComparison> = new Set(['gt', 'gte', 'lt', 'lte']);
const OPERATOR_LIST = '$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin';

/** A value of a raw field type, normalised as stored (DATETIME in UTC). */
export function parseFieldValue(type: FieldTypeName, value: unknown): Parsed<RowFilterValue> {
  switch (type) {
    case 'STRING':
      return parseText(value);
    case 'INTEGER':
      return parseInt32(value);
    case 'FLOAT':
      return parseFloat64(value);
    case 'BOOLEAN':
      return parseBoolean(value);
    case 'DATE': {
      const date = parseDate(value);
      return date ? { ok: true, value: date } : { ok: false, message: "expected a date 'YYYY-MM-DD'" };
    }
    case 'DATETIME': {
      const at = typeof value === 'string' ? parseDateTime(value) : null;
      return at
        ? { ok: true, value: at }
        : { ok: false, message: 'expected an ISO 8601 date-time such as 2024-05-01T13:45:00Z' };
    }
  }
  return { ok: false, message: 'the field has an unknown type' };
}

interface ParseState {
  fields: ReadonlyMap<string, FieldDefinition>;
  problems: ProblemList;
  nodes: number;
  tooMany: boolean;
}

interface ParsedRowFilter {
  node: RowFilterNode;
  filter: RowFilter;
}

function countNode(state: ParseState, path: string): boolean {
  if (++state.nodes <= MAX_ROW_FILTER_NODES) return true;
  if (!state.tooMany) state.problems.add(path, `a row filter has at most ${MAX_ROW_FILTER_NODES} conditions`);
  state.tooMany = true;
  return false;
}

function readFilter(input: unknown, path: string, depth: number, state: ParseState): ParsedRowFilter | null {
  const { problems } = state;
  if (depth > MAX_ROW_FILTER_DEPTH) {
    problems.add(path, `a row filter nests at most ${MAX_ROW_FILTER_DEPTH} levels deep`);
    return null;
  }
  if (!countNode(state, path)) return null;
  const entries = ownFields(input);
  if (!entries) {
    problems.add(path, 'must be an object of conditions');
    return null;
  }
  if (entries.size === 0) {
    problems.add(path, 'must have at least one condition');
    return null;
  }
  let ok = true;
  const children: RowFilterNode[] = [];
  const filter: RowFilter = {};
  for (const [key, value] of entries) {
    if (state.tooMany) return null;
    const at = keyPath(path, key);
    if (FORBIDDEN_KEYS.has(key)) {
      problems.add(at, 'is not allowed as a key');
      ok = false;
    } else if (key === '$and' || key === '$or') {
      const list = ownArray(value);
      if (!list || list.length === 0) {
        problems.add(at, 'must be a non-empty list of row filters');
        ok = false;
        continue;
      }
      const parts: ParsedRowFilter[] = [];
      for (let i = 0; i < list.length && !state.tooMany; i++) {
        const part = readFilter(list[i], `${at}[${i}]`, depth + 1, state);
        if (part) parts.push(part);
        else ok = false;
      }
      if (!ok) continue;
      children.push({ kind: key === '$and' ? 'and' : 'or', children: parts.map((p) => p.node) });
      filter[key] = parts.map((p) => p.filter);
    } else if (key.startsWith('$')) {
      problems.add(at, 'is not an operator here: only $and and $or combine filters');
      ok = false;
    } else {
      const field = state.fields.get(key);
      if (!field) {
        problems.add(at, 'is not a field of the dataset');
        ok = false;
      } else if (countNode(state, at)) {
        const condition = readCondition(value, field, at, state);
        if (!condition) ok = false;
        else {
          children.push(condition.node);
          filter[key] = condition.filter;
        }
      }
    }
  }
  if (!ok || state.tooMany) return null;
  return { node: children.length === 1 ? children[0] : { kind: 'and', children }, filter };
}

function readCondition(
  input: unknown,
  field: FieldDefinition,
  path: string,
  state: ParseState,
): { node: RowFilterNode; filter: RowFilterValue | RowFilterOperators } | null {
  const { problems } = state;
  if (input === null) {
    problems.add(path, 'must not be null: a condition on a null value is never true');
    return null;
  }
  if (typeof input !== 'object') {
    const parsed = parseFieldValue(field.type, input);
    if (!parsed.ok) {
      problems.add(path, parsed.message);
      return null;
    }
    return { node: { kind: 'compare', field, op: 'eq', value: parsed.value }, filter: parsed.value };
  }
  const operators = ownFields(input);
  if (!operators) {
    problems.add(path, `must be a value or an object of operators (${OPERATOR_LIST})`);
    return null;
  }
  if (operators.size === 0) {
    problems.add(path, `must have at least one operator (${OPERATOR_LIST})`);
    return null;
  }
  const type: FieldTypeName = field.type;
  let ok = true;
  const nodes: RowFilterNode[] = [];
  // Keys written here are operator names from the fixed lists above, never the caller's own.
  const filter: Record<string, RowFilterValue | RowFilterValue[]> = {};
  for (const [key, value] of operators) {
    const at = keyPath(path, key);
    const comparison = COMPARISONS.get(key);
    if (comparison) {
      if (RANGES.has(comparison) && type === 'BOOLEAN') {
        problems.add(at, 'ranges do not apply to a BOOLEAN field');
        ok = false;
        continue;
      }
      if (value === null) {
        problems.add(at, 'must not be null: a condition on a null value is never true');
        ok = false;
        continue;
      }
      const parsed = parseFieldValue(field.type, value);
      if (!parsed.ok) {
        problems.add(at, parsed.message);
        ok = false;
        continue;
      }
      nodes.push({ kind: 'compare', field, op: comparison, value: parsed.value });
      filter[key] = parsed.value;
    } else if (key === '$in' || key === '$nin') {
      const list = ownArray(value);
      if (!list || list.length === 0 || list.length > MAX_ROW_FILTER_LIST) {
        problems.add(at, `must be a list of 1 to ${MAX_ROW_FILTER_LIST} values`);
        ok = false;
        continue;
      }
      const values: RowFilterValue[] = [];
      for (let i = 0; i < list.length; i++) {
        const parsed =
          list[i] === null
            ? { ok: false as const, message: 'must not be null: a condition on a null value is never true' }
            : parseFieldValue(field.type, list[i]);
        if (parsed.ok) values.push(parsed.value);
        else {
          problems.add(`${at}[${i}]`, parsed.message);
          ok = false;
          break;
        }
      }
      if (values.length !== list.length) continue;
      nodes.push({ kind: key === '$in' ? 'in' : 'nin', field, values });
      filter[key] = values;
    } else {
      problems.add(
        at,
        FORBIDDEN_KEYS.has(key) ? 'is not allowed as a key' : `is not an operator (${OPERATOR_LIST})`,
      );
      ok = false;
    }
  }
  if (!ok) return null;
  return {
    node: nodes.length === 1 ? nodes[0] : { kind: 'and', children: nodes },
    filter: filter as RowFilterOperators,
  };
}

/** Reads a row filter into `problems`; the parsed tree and canonical JSON, or null when it has problems. */
export function readRowFilter(
  input: unknown,
  dataset: DatasetShape,
  path: string,
  problems: ProblemList,
): ParsedRowFilter | null {
  const fields = new Map(dataset.fields.map((f) => [f.name, f]));
  return readFilter(input, path, 1, { fields, problems, nodes: 0, tooMany: false });
}

/** Parses an untrusted row filter against a dataset: its tree and canonical JSON, or every problem. */
export function parseRowFilter(
  input: unknown,
  dataset: DatasetShape,
): { ok: true; node: RowFilterNode; filter: RowFilter } | { ok: false; problems: InputProblem[] } {
  const problems = new ProblemList();
  const parsed = readRowFilter(input, dataset, 'rowFilter', problems);
  return parsed && problems.empty ? { ok: true, ...parsed } : { ok: false, problems: problems.problems };
}
