/**
 * Data-plane filters (DESIGN §4.2 `<Type>Where`) parsed against the chosen grant. A name is looked
 * up among the grant's released names before anything else about it is read, so a refusal never
 * depends on, or reveals, whether or how an unreleased field exists.
 */
import { shownName } from './compiled-grant';
import {
  dateOfDateObject,
  parseBoolean,
  parseDate,
  parseDateTime,
  parseFloat64,
  parseInt32,
  parseText,
  type Parsed,
} from './field-value';
import { PolicyError } from './policy-error';
import {
  type CompiledGrant,
  type DataWhere,
  FieldTransform,
  PERSON_KEY,
  type ReleasedField,
  type ReleasedType,
} from './policy.types';
import { ownArray, ownFields } from './untrusted-input';

export const MAX_WHERE_DEPTH = 16;
export const MAX_WHERE_NODES = 1000;
export const MAX_WHERE_LIST = 10_000;

/** A scalar compared with a released value, normalised (DateTime in UTC, Date 'YYYY-MM-DD'). */
export type WhereValue = string | number | boolean;

/** What a filter compares: a released field, or personKey (whose SQL the data plane supplies). */
export interface WhereTarget {
  name: string;
  type: ReleasedType;
  released: ReleasedField | null;
}

/** A data-plane comparison of a released value. */
export type WhereComparison = 'eq' | 'neq' | 'gt' | 'gte' | 'lt' | 'lte';

/** A parsed data-plane filter. */
export type WhereNode =
  | { kind: 'and' | 'or'; children: WhereNode[] }
  | { kind: 'not'; child: WhereNode }
  | { kind: 'compare'; target: WhereTarget; op: WhereComparison; value: WhereValue }
  | { kind: 'in' | 'nin'; target: WhereTarget; values: WhereValue[] }
  | { kind: 'isNull'; target: WhereTarget; isNull: boolean };

const COMPARISONS: ReadonlySet<string> = new Set(['eq', 'neq', 'gt', 'gte', 'lt', 'lte']);
const BOOLEAN_OPERATORS: ReadonlySet<string> = new Set(['eq', 'isNull']);

const badInput = (message: string) => new PolicyError('BAD_USER_INPUT', message);
const limit = (message: string) => new PolicyError('BAD_USER_INPUT', message, true);

/** A value of a released type, normalised for its parameter. */
export function parseReleasedValue(type: ReleasedType, value: unknown): Parsed<WhereValue> {
  switch (type) {
    case 'String':
      return parseText(value);
    case 'Int':
      return parseInt32(value);
    case 'Float':
      return parseFloat64(value);
    case 'Boolean':
      return parseBoolean(value);
    case 'Date': {
      const date = value instanceof Date ? dateOfDateObject(value) : parseDate(value);
      return date ? { ok: true, value: date } : { ok: false, message: "expected a date 'YYYY-MM-DD'" };
    }
    case 'DateTime': {
      const at = parseDateTime(value);
      return at ? { ok: true, value: at } : { ok: false, message: 'expected an ISO 8601 date-time' };
    }
  }
  return { ok: false, message: 'unknown type' };
}

/** Options of the data-plane compilers. */
export interface ReleasedNameOptions {
  /** The SQL expression of personKey, when the grant has linkage and linkage has run. */
  personKey?: string;
  /**
   * A condition that every record whose personKey is one of the keys (a `text[]` placeholder) meets,
   * cheaper to find them by than {@link personKey}: added beside a filter on it, never instead.
   */
  personKeyAmong?: (keys: string) => string;
  /**
   * A condition that every record whose value of the HASH name `released` is one of `values` (a
   * `text[]` placeholder, added to the statement only when called; `asked` are the values
   * themselves) meets, cheaper to find them by than the HMAC of every record (a lookup table's):
   * added beside a filter on it, never instead; null where there is none.
   */
  hashAmong?: (released: ReleasedField, values: () => string, asked: readonly string[]) => string | null;
}

/** The released field a caller names, or FORBIDDEN: looked up by name only, in the grant alone. */
export function releasedTarget(
  grant: CompiledGrant,
  name: string,
  options: ReleasedNameOptions,
): WhereTarget {
  if (name === PERSON_KEY) {
    if (grant.linkage && options.personKey) return { name, type: 'String', released: null };
    // Released, but not here: an aggregate counts persons (unit: PERSONS) and filters by no key.
    if (grant.linkage)
      throw new PolicyError('FORBIDDEN', 'personKey filters and orders rows only, not aggregates');
  } else {
    const released = grant.released.get(name);
    if (released) return { name, type: released.type, released };
  }
  throw new PolicyError('FORBIDDEN', `The chosen agreement does not release ${shownName(name)}`);
}

interface WalkState {
  nodes: number;
}

function countNode(state: WalkState): void {
  if (++state.nodes > MAX_WHERE_NODES) throw limit('A filter has too many conditions');
}

function readList(value: unknown, what: string): unknown[] {
  const list = ownArray(value);
  if (!list) throw badInput(`${what} must be a list`);
  if (list.length > MAX_WHERE_LIST) throw limit(`${what} has too many entries`);
  return list;
}

function readWhere(
  input: unknown,
  grant: CompiledGrant,
  options: ReleasedNameOptions,
  depth: number,
  state: WalkState,
): WhereNode {
  if (depth > MAX_WHERE_DEPTH) throw limit('A filter nests too deep');
  countNode(state);
  const entries = ownFields(input);
  if (!entries) throw badInput('A filter must be an object');
  const children: WhereNode[] = [];
  for (const [key, value] of entries) {
    if (key !== 'and' && key !== 'or' && key !== 'not') {
      // The name first: a filter on an unreleased name is FORBIDDEN whatever its value.
      const target = releasedTarget(grant, key, options);
      if (value === null) throw badInput(`The filter on ${shownName(key)} must not be null`);
      children.push(readFieldFilter(target, value, state));
    } else if (value === null) {
      throw badInput(`${key} must not be null`);
    } else if (key === 'and' || key === 'or') {
      const parts = readList(value, key).map((part) => readWhere(part, grant, options, depth + 1, state));
      children.push({ kind: key, children: parts });
    } else {
      children.push({ kind: 'not', child: readWhere(value, grant, options, depth + 1, state) });
    }
  }
  return children.length === 1 ? children[0] : { kind: 'and', children };
}

function readFieldFilter(target: WhereTarget, input: unknown, state: WalkState): WhereNode {
  countNode(state);
  const entries = ownFields(input);
  if (!entries) throw badInput(`The filter on ${shownName(target.name)} must be an object`);
  const conditions: WhereNode[] = [];
  for (const [op, value] of entries) {
    const at = `${shownName(target.name)}.${shownName(op)}`;
    if (target.type === 'Boolean' && !BOOLEAN_OPERATORS.has(op)) {
      throw badInput(`${at} is not an operator of a Boolean filter (eq, isNull)`);
    }
    if (value === null) throw badInput(`${at} must not be null: use isNull to match nulls`);
    if (op === 'isNull') {
      if (typeof value !== 'boolean') throw badInput(`${at} must be true or false`);
      conditions.push({ kind: 'isNull', target, isNull: value });
    } else if (COMPARISONS.has(op)) {
      const parsed = parseReleasedValue(target.type, value);
      if (!parsed.ok) throw badInput(`${at} ${parsed.message}`);
      conditions.push({ kind: 'compare', target, op: op as WhereComparison, value: parsed.value });
    } else if (op === 'in' || op === 'nin') {
      const values = readList(value, at).map((item, i) => {
        const parsed = item === null ? null : parseReleasedValue(target.type, item);
        if (!parsed?.ok) throw badInput(`${at}[${i}] ${parsed ? parsed.message : 'must not be null'}`);
        return parsed.value;
      });
      conditions.push({ kind: op, target, values });
    } else {
      throw badInput(`${at} is not a filter operator (eq, neq, gt, gte, lt, lte, in, nin, isNull)`);
    }
  }
  return conditions.length === 1 ? conditions[0] : { kind: 'and', children: conditions };
}

/**
 * Parses an untrusted data-plane filter against the chosen grant. Throws PolicyError: FORBIDDEN for
 * a name the grant does not release, BAD_USER_INPUT for a malformed filter or value. Null is refused
 * everywhere: it is no value to compare with, and `isNull` says what is meant.
 */
export function parseDataWhere(
  where: DataWhere,
  grant: CompiledGrant,
  options: ReleasedNameOptions = {},
): WhereNode {
  return readWhere(where, grant, options, 1, { nodes: 0 });
}

/**
 * The names a filter uses, for the decision and the audit record. Throws BAD_USER_INPUT for a filter
 * too deep or too large to walk.
 */
export function whereFieldNames(where: DataWhere | null | undefined): string[] {
  const names = new Set<string>();
  const state: WalkState = { nodes: 0 };
  const walk = (input: unknown, depth: number): void => {
    if (depth > MAX_WHERE_DEPTH) throw limit('A filter nests too deep');
    countNode(state);
    const entries = ownFields(input);
    if (!entries) throw badInput('A filter must be an object');
    for (const [key, value] of entries) {
      if (key === 'and' || key === 'or') readList(value, key).forEach((part) => walk(part, depth + 1));
      else if (key === 'not') walk(value, depth + 1);
      else names.add(key);
    }
  };
  if (where != null) walk(where, 1);
  return [...names];
}

/** What a filter costs each record it is checked on: see {@link filterWeight}. */
export interface FilterWeight {
  /** Its conditions: each operator of each name's filter. */
  conditions: number;
  /** Those on HASH names: an HMAC of the record's value each (an `in` list one). */
  hashed: number;
}

/**
 * The weight of a filter (its names already decided, see whereFieldNames): how many conditions
 * PostgreSQL may evaluate on each record the filter is checked on, and how many of them compute an
 * HMAC. Malformed parts count as one condition each; the filter's parse refuses them.
 */
export function filterWeight(where: DataWhere | null | undefined, grant: CompiledGrant): FilterWeight {
  const weight: FilterWeight = { conditions: 0, hashed: 0 };
  const walk = (input: unknown, depth: number): void => {
    const entries = depth > MAX_WHERE_DEPTH ? null : ownFields(input);
    if (!entries) return;
    for (const [key, value] of entries) {
      if (key === 'and' || key === 'or') (ownArray(value) ?? []).forEach((part) => walk(part, depth + 1));
      else if (key === 'not') walk(value, depth + 1);
      else {
        const operators = ownFields(value)?.size ?? 1;
        weight.conditions += operators;
        if (grant.released.get(key)?.transform === FieldTransform.HASH) weight.hashed += operators;
      }
    }
  };
  if (where != null) walk(where, 1);
  return weight;
}
