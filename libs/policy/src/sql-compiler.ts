/**
 * SQL fragments for PostgreSQL 15: released values, agreement row filters, data-plane filters,
 * ordering and projection. Values only ever travel as parameters; identifiers only through
 * quoteIdent. Every expression here is total (it cannot raise an error for any stored value), so
 * the planner evaluating a caller's filter on rows that the row filter excludes reveals nothing.
 */
import type { FieldDefinition } from '@broker/registry';
import {
  type ReleasedNameOptions,
  type WhereNode,
  type WhereTarget,
  type WhereValue,
  parseDataWhere,
  releasedTarget,
} from './data-where';
import { PolicyError } from './policy-error';
import {
  type CompiledGrant,
  type DataWhere,
  type DatasetShape,
  FieldTransform,
  type FieldTypeName,
  type ReleasedField,
  type ReleasedType,
  type RowFilter,
} from './policy.types';
import { releasedField, transformApplies } from './released-field';
import { type RowFilterNode, parseRowFilter } from './row-filter';
import { LiteralParams, type SqlParams, columnRef, isPlaceholder, quoteIdent } from './sql-builder';

/**
 * The agreement's HMAC key as a bytea placeholder (`params.add(key, 'bytea')`), or, better, a lazy
 * one (`params.lazy(key, 'bytea')`), added only when a HASH value is actually used.
 */
export type HmacKeyParam = string | (() => string);

/** At most this many ordering terms in one request. */
export const MAX_ORDER_BY = 20;

const COLUMN_TYPES: Record<FieldTypeName, string> = {
  STRING: 'text',
  INTEGER: 'integer',
  FLOAT: 'double precision',
  BOOLEAN: 'boolean',
  DATE: 'date',
  DATETIME: 'timestamptz',
};

const RELEASED_TYPES: Record<ReleasedType, string> = {
  String: 'text',
  Int: 'integer',
  Float: 'double precision',
  Boolean: 'boolean',
  Date: 'date',
  DateTime: 'timestamptz',
};

/** The PostgreSQL type of a released value, for parameters compared with it. */
export function pgTypeOfReleased(type: ReleasedType): string {
  return RELEASED_TYPES[type];
}

const DATETIME_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;

/**
 * The checks of {@link sourceField} that passed, by dataset and released field. A page's statement
 * asks for each released value several times (its projection, its filter, its order), request after
 * request, about the policy cache's own objects: a grant and a dataset's shape are compiled once and
 * never changed (a new version or shape is a new object, which is checked afresh). A failed check is
 * not remembered: it throws every time.
 */
const checkedSources = new WeakMap<DatasetShape, WeakMap<ReleasedField, FieldDefinition>>();

/** The raw field a released field comes from, checked against the transform table. */
function sourceField(rf: ReleasedField, dataset: DatasetShape): FieldDefinition {
  let checked = checkedSources.get(dataset);
  const known = checked?.get(rf);
  if (known) return known;
  const field = dataset.fields.find((f) => f.name === rf.source);
  if (field && transformApplies(field.type, rf.transform)) {
    const expected = releasedField(field, rf.transform);
    if (expected.name === rf.name && expected.type === rf.type) {
      if (!checked) checkedSources.set(dataset, (checked = new WeakMap()));
      checked.set(rf, field);
      return field;
    }
  }
  throw new PolicyError('FORBIDDEN', "The agreement's grant does not match the dataset (fields)");
}

/**
 * A DATE as 'YYYY-MM-DD', through timestamp rather than timestamptz so the session's zone cannot
 * shift the day. Null outside years 1..9999 (what ingestion stores): beyond them the cast to
 * timestamp raises an error, and 'YYYY' would drop the era of a BC year.
 */
function dateText(column: string): string {
  return `(CASE WHEN extract(year from ${column}) BETWEEN 1 AND 9999 THEN to_char(${column}::timestamp, 'YYYY-MM-DD') END)`;
}

/** A DATETIME as ISO 8601 in UTC with milliseconds and 'Z'. Null outside years 1..9999, as for dates. */
function instantText(column: string): string {
  const utc = `${column} AT TIME ZONE 'UTC'`;
  return `(CASE WHEN extract(year from ${utc}) BETWEEN 1 AND 9999 THEN to_char(${utc}, ${DATETIME_FORMAT}) END)`;
}

/**
 * A value as the text that HASH keys: STRING as is, numbers as PostgreSQL writes them (shortest
 * exact form, with the default extra_float_digits), BOOLEAN 'true'/'false', DATE 'YYYY-MM-DD',
 * DATETIME ISO 8601 UTC with milliseconds. Null stays null.
 */
function canonicalText(column: string, type: FieldTypeName): string {
  switch (type) {
    case 'STRING':
      return column;
    case 'INTEGER':
    case 'FLOAT':
      return `${column}::text`;
    case 'BOOLEAN':
      return `(CASE WHEN ${column} THEN 'true' WHEN NOT ${column} THEN 'false' END)`;
    case 'DATE':
      return dateText(column);
    case 'DATETIME':
      return instantText(column);
  }
}

/**
 * The lower bound of a value's 5-wide band, floor(v / 5) * 5, as an integer. Null when it falls
 * outside the 32-bit range of GraphQL's Int (and for NaN or infinities), rather than an error that
 * would fail the whole query. The guards come first because CASE evaluates its branches lazily:
 * PostgreSQL raises an error when float division underflows (5e-324 / 5), so |v| < 5 is answered
 * without dividing, and the bounds keep the cast to int from overflowing.
 */
function band(column: string, type: 'INTEGER' | 'FLOAT'): string {
  if (type === 'INTEGER') {
    // Integer arithmetic (a floored remainder), exact and several times cheaper than numeric's floor;
    // only the three lowest integers have a band below -2^31.
    return `(CASE WHEN ${column} >= -2147483645 THEN ${column} - (${column} % 5 + 5) % 5 END)`;
  }
  return (
    `(CASE WHEN ${column} >= 0 AND ${column} < 5 THEN 0 WHEN ${column} >= -5 AND ${column} < 0 THEN -5 ` +
    `WHEN ${column} >= -2147483645 AND ${column} < 2147483650 ` +
    `THEN (floor(${column} / 5::double precision) * 5)::int END)`
  );
}

/** A year, null for PostgreSQL's infinite dates, whose year cannot be cast to int without an error. */
function year(column: string, utc: boolean): string {
  const value = utc ? `${column} AT TIME ZONE 'UTC'` : column;
  return `(CASE WHEN isfinite(${column}) THEN extract(year from ${value})::int END)`;
}

function generalized(column: string, type: FieldTypeName): string {
  switch (type) {
    case 'DATE':
      return year(column, false);
    case 'DATETIME':
      return year(column, true);
    case 'INTEGER':
    case 'FLOAT':
      return band(column, type);
    case 'STRING':
      return `left(${column}, 3)`;
    case 'BOOLEAN':
      break;
  }
  throw new PolicyError('FORBIDDEN', 'GENERALIZE does not apply to a BOOLEAN field');
}

/**
 * The SQL expression of a released value (DESIGN's transform table). Only HASH reads
 * `hmacKeyParam`, the agreement's own key (see {@link HmacKeyParam}).
 */
export function releasedExpression(
  rf: ReleasedField,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
): string {
  const field = sourceField(rf, dataset);
  const column = columnRef(tableAlias, field.name);
  switch (rf.transform) {
    case FieldTransform.RAW:
      return column;
    case FieldTransform.HASH: {
      const key = typeof hmacKeyParam === 'function' ? hmacKeyParam() : hmacKeyParam;
      if (!isPlaceholder(key, 'bytea'))
        throw new Error('the HMAC key must be a bytea parameter ($n::bytea, or its setting)');
      return `encode(hmac(convert_to(${canonicalText(column, field.type)}, 'UTF8'), ${key}, 'sha256'), 'hex')`;
    }
    case FieldTransform.GENERALIZE:
      return generalized(column, field.type);
  }
  throw new PolicyError('FORBIDDEN', 'Unknown transform');
}

/**
 * A released value as the response carries it: Date as 'YYYY-MM-DD' and DateTime as ISO 8601 UTC
 * with 'Z' (as text, so neither json_build_object nor the driver applies a session zone); the rest
 * as {@link releasedExpression}.
 */
export function releasedJsonExpression(
  rf: ReleasedField,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
): string {
  const expression = releasedExpression(rf, dataset, tableAlias, hmacKeyParam);
  switch (rf.type) {
    case 'Date':
      return dateText(expression);
    case 'DateTime':
      return instantText(expression);
    case 'String':
    case 'Int':
    case 'Float':
    case 'Boolean':
      return expression;
  }
}

/**
 * A released value as a page's statement selects it, as text for the node's JSON (NodeJsonWriter in
 * libs/data-plane): a Date as PostgreSQL's text of it and a DateTime as the text of its UTC time
 * (a quarter of to_char's cost; the readers' connections write them in DateStyle ISO, and the writer
 * cuts them to the form of {@link releasedJsonExpression}, which a differential test holds it to),
 * the rest as the text of {@link releasedExpression}.
 */
export function releasedTextExpression(
  rf: ReleasedField,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
): string {
  return keptText(releasedExpression(rf, dataset, tableAlias, hmacKeyParam), pgTypeOfReleased(rf.type));
}

/**
 * A value as text that reads back to the same value (readBack in keyset.ts) under any DateStyle and
 * time zone: a date as its text and an instant as the text of its UTC time, each written in DateStyle
 * ISO (the readers' connections, which run every page's statement, set it: see Database), whose
 * year-first form PostgreSQL reads the same under every DateStyle ('2024-03-05 06:07:08.5',
 * '0044-03-15 BC', 'infinity'). A quarter of to_char's cost, on every row of a page. One form for a
 * released value and a cursor's position alike, so a page selects a value both need once.
 */
export function keptText(expression: string, pgType: string): string {
  switch (pgType) {
    case 'timestamptz':
      return `(${expression} AT TIME ZONE 'UTC')::text`;
    default:
      return `(${expression})::text`;
  }
}

/**
 * Text compared by range or sorted uses the "C" collation: code point order, the same on every
 * server whatever its locale, so filters and cursors agree with ordering everywhere.
 */
function ordered(expression: string, isText: boolean): string {
  return isText ? `${expression} COLLATE "C"` : expression;
}

const SQL_OPERATORS = { eq: '=', ne: '<>', neq: '<>', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;

/**
 * A comparison. Equality is exact in every collation, but PostgreSQL uses an index only in the
 * collation it was built in: text is compared in "C" for `=` and `<>` too, so that the indexes the
 * broker builds (all in "C") serve lookups, ranges and orderings alike.
 */
function comparison(
  expression: string,
  isText: boolean,
  op: keyof typeof SQL_OPERATORS,
  placeholder: string,
): string {
  return `(${ordered(expression, isText)} ${SQL_OPERATORS[op]} ${placeholder})`;
}

function rowFilterNodeSql(node: RowFilterNode, tableAlias: string, params: SqlParams): string {
  switch (node.kind) {
    case 'and':
    case 'or':
      if (node.children.length === 0) return node.kind === 'and' ? 'TRUE' : 'FALSE';
      return `(${node.children.map((c) => rowFilterNodeSql(c, tableAlias, params)).join(` ${node.kind.toUpperCase()} `)})`;
    case 'compare': {
      const type = COLUMN_TYPES[node.field.type];
      return comparison(
        columnRef(tableAlias, node.field.name),
        type === 'text',
        node.op,
        params.add(node.value, type),
      );
    }
    case 'in':
    case 'nin': {
      const type = COLUMN_TYPES[node.field.type];
      const column = columnRef(tableAlias, node.field.name);
      const list = params.add(node.values, `${type}[]`);
      const left = ordered(column, type === 'text');
      return node.kind === 'in' ? `(${left} = ANY(${list}))` : `(${left} <> ALL(${list}))`;
    }
  }
}

/**
 * An agreement row filter as a condition on the raw columns, with SQL's three-valued logic: any
 * comparison with a null column is unknown and excludes the row, `$ne` and `$nin` included.
 * Throws PolicyError FORBIDDEN when the filter does not fit the dataset (fail closed).
 */
export function rowFilterSql(
  filter: RowFilter,
  dataset: DatasetShape,
  tableAlias: string,
  params: SqlParams,
): string {
  let parsedFor = parsedRowFilters.get(filter);
  let node = parsedFor?.get(dataset);
  if (!node) {
    const parsed = parseRowFilter(filter, dataset);
    if (!parsed.ok)
      throw new PolicyError('FORBIDDEN', "The agreement's row filter does not match the dataset");
    node = parsed.node;
    if (!parsedFor) parsedRowFilters.set(filter, (parsedFor = new WeakMap()));
    parsedFor.set(dataset, node);
  }
  // Written in as literals, the text depends on the filter, the shape and the alias alone: written
  // once per policy object, where every page under the filter would write it again.
  if (!(params instanceof LiteralParams)) return rowFilterNodeSql(node, tableAlias, params);
  let byAlias = literalRowFilters.get(node);
  if (!byAlias) literalRowFilters.set(node, (byAlias = new Map<string, string>()));
  let text = byAlias.get(tableAlias);
  if (text === undefined) {
    text = rowFilterNodeSql(node, tableAlias, params);
    byAlias.set(tableAlias, text);
  }
  return text;
}

/** A parsed row filter written with its values as literals, by table alias (see rowFilterSql). */
const literalRowFilters = new WeakMap<RowFilterNode, Map<string, string>>();

/**
 * A row filter as the predicate of a partial index of its dataset's record table (see the registry's
 * `populationIndexes`): the very conditions {@link rowFilterSql} writes for a statement, with its
 * values written in as literals of the same types ({@link LiteralParams}), so that PostgreSQL, planning
 * a statement for its values, finds its population's conditions to be the predicate and may use the
 * index. `table` is the record table's own name, by which CREATE INDEX names its columns. Throws
 * PolicyError FORBIDDEN when the filter does not fit the dataset.
 */
export function rowFilterPredicate(filter: RowFilter, dataset: DatasetShape, table: string): string {
  return rowFilterSql(filter, dataset, table, new LiteralParams());
}

/**
 * Row filters parsed against a dataset, by the grant's filter and the dataset's shape: the policy
 * cache's own objects, never changed (see checkedSources). Parsed once per policy, not per request; a
 * filter that does not parse is not remembered, and is refused every time.
 */
const parsedRowFilters = new WeakMap<RowFilter, WeakMap<DatasetShape, RowFilterNode>>();

/** The expression of a target: a released field's value, or the data plane's personKey. */
function targetExpression(
  target: WhereTarget,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions,
): string {
  if (target.released) return releasedExpression(target.released, dataset, tableAlias, hmacKeyParam);
  if (!options.personKey) throw new PolicyError('FORBIDDEN', 'personKey is not released');
  return `(${options.personKey})`;
}

interface WhereContext {
  dataset: DatasetShape;
  tableAlias: string;
  params: SqlParams;
  hmacKeyParam: HmacKeyParam;
  options: ReleasedNameOptions;
}

function whereNodeSql(node: WhereNode, c: WhereContext): string {
  switch (node.kind) {
    case 'and':
    case 'or':
      // An empty `and` holds for every row; an empty `or` for none.
      if (node.children.length === 0) return node.kind === 'and' ? 'TRUE' : 'FALSE';
      return `(${node.children.map((child) => whereNodeSql(child, c)).join(` ${node.kind.toUpperCase()} `)})`;
    case 'not':
      // SQL's NOT keeps unknown unknown: a row excluded by a null matches neither a filter nor its not.
      return `(NOT ${whereNodeSql(node.child, c)})`;
    case 'isNull': {
      const expression = targetExpression(node.target, c.dataset, c.tableAlias, c.hmacKeyParam, c.options);
      return `(${expression} IS ${node.isNull ? '' : 'NOT '}NULL)`;
    }
    case 'compare': {
      const expression = targetExpression(node.target, c.dataset, c.tableAlias, c.hmacKeyParam, c.options);
      const type = pgTypeOfReleased(node.target.type);
      return comparison(expression, type === 'text', node.op, c.params.add(node.value, type));
    }
    case 'in':
    case 'nin': {
      const expression = targetExpression(node.target, c.dataset, c.tableAlias, c.hmacKeyParam, c.options);
      // Empty lists: `in` matches no value and `nin` every value, but a null stays unknown, as for
      // non-empty lists (plain `= ANY('{}')` would be false, and `<> ALL('{}')` true, even for null).
      if (node.values.length === 0) {
        return `(CASE WHEN ${expression} IS NOT NULL THEN ${node.kind === 'in' ? 'FALSE' : 'TRUE'} END)`;
      }
      const type = pgTypeOfReleased(node.target.type);
      const list = c.params.add(node.values, `${type}[]`);
      const left = ordered(expression, type === 'text');
      return node.kind === 'in' ? `(${left} = ANY(${list}))` : `(${left} <> ALL(${list}))`;
    }
  }
}

/**
 * A data-plane filter as a condition on released values (never raw ones), with SQL's three-valued
 * logic. Throws PolicyError FORBIDDEN for a name the grant does not release, BAD_USER_INPUT for a
 * malformed filter. `options.personKey` is the SQL of personKey, where the grant has linkage.
 */
export function whereSql(
  where: DataWhere,
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  params: SqlParams,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): string {
  const { node, context } = parsedWhere(where, grant, dataset, tableAlias, params, hmacKeyParam, options);
  // At the top level (where only "true" selects a row), a year comparison is exactly a range of the
  // raw column: written as that range, the planner estimates it from the column's statistics and an
  // index on the column serves it, where the year's expression would be a guess.
  const conjuncts = node.kind === 'and' ? node.children : [node];
  if (conjuncts.some((child) => exactRange(child, context, true) !== null)) {
    const parts = conjuncts.map((child) => exactRange(child, context) ?? whereNodeSql(child, context));
    const bounds = conjuncts.flatMap((child) =>
      exactRange(child, context, true) !== null ? [] : impliedBounds(child, context),
    );
    return `(${[...parts, ...bounds].join(' AND ')})`;
  }
  const condition = whereNodeSql(node, context);
  const bounds = impliedBounds(node, context);
  return bounds.length ? `(${condition} AND ${bounds.join(' AND ')})` : condition;
}

/** A filter parsed against its grant (of the dataset's), and what its SQL is written with. */
function parsedWhere(
  where: DataWhere,
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  params: SqlParams,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions,
) {
  if (grant.datasetId !== dataset.id) throw new PolicyError('FORBIDDEN', 'The grant is for another dataset');
  const node = parseDataWhere(where, grant, options);
  return { node, context: { dataset, tableAlias, params, hmacKeyParam, options } };
}

/** At most this many conditions a filter implies are checked on every record (see {@link whereParts}). */
export const MAX_INDEXABLE_CONDITIONS = 8;

/** A data-plane filter in two parts: see {@link whereParts}. */
export interface WhereParts {
  /** The whole filter, on released values (the condition of {@link whereSql}, without what it implies). */
  condition: string;
  /**
   * Conditions the filter implies, cheap and on raw columns (a RAW comparison, a year or band as its
   * range, the lookup of HASH values or personKeys), at most {@link MAX_INDEXABLE_CONDITIONS}: what
   * an index can serve, so that they may be checked on any record, before the population is.
   */
  indexable: string[];
}

/**
 * {@link whereSql} in two parts, for a statement that checks the filter only on records of the
 * population (after consent: see populationConditions): the whole `condition`, and the few cheap
 * `indexable` conditions it implies, which find the records by index and are the only part of the
 * caller's filter a record outside the population costs anything. The same records as whereSql.
 */
export function whereParts(
  where: DataWhere,
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  params: SqlParams,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): WhereParts {
  const { node, context } = parsedWhere(where, grant, dataset, tableAlias, params, hmacKeyParam, options);
  const indexable: string[] = [];
  for (const child of node.kind === 'and' ? node.children : [node]) {
    if (indexable.length >= MAX_INDEXABLE_CONDITIONS) break;
    const range = exactRange(child, context);
    if (range !== null) indexable.push(range);
    else if (isRawComparison(child)) indexable.push(whereNodeSql(child, context));
    else indexable.push(...impliedBounds(child, context));
  }
  return {
    condition: whereNodeSql(node, context),
    indexable: indexable.slice(0, MAX_INDEXABLE_CONDITIONS),
  };
}

/** A comparison of a RAW name (not personKey) with a value or a list: a plain column's, cheap. */
function isRawComparison(node: WhereNode): boolean {
  if (node.kind !== 'compare' && node.kind !== 'in' && node.kind !== 'nin') return false;
  return node.target.released?.transform === FieldTransform.RAW;
}

/**
 * A comparison of a DATE or DATETIME year (GENERALIZE) as the exactly equivalent condition on the raw
 * column, for a top-level conjunct (true for the same rows: finite values in the range; the year of
 * an infinite value is null and matches nothing), or null where there is none. `probe` adds nothing.
 */
function exactRange(node: WhereNode, c: WhereContext, probe = false): string | null {
  if (node.kind !== 'compare' || node.op === 'neq') return null;
  const released = node.target.released;
  if (!released || released.transform !== FieldTransform.GENERALIZE) return null;
  const field = sourceField(released, c.dataset);
  const type = field.type as FieldTypeName;
  if (type !== 'DATE' && type !== 'DATETIME') return null;
  const y = Number(node.value);
  if (!Number.isInteger(y) || y < 1 || y > 9998) return null;
  if (probe) return '';
  const column = columnRef(c.tableAlias, field.name);
  const start = (year: number) =>
    type === 'DATE'
      ? c.params.add(`${String(year).padStart(4, '0')}-01-01`, 'date')
      : c.params.add(`${String(year).padStart(4, '0')}-01-01T00:00:00Z`, 'timestamptz');
  const finite = `isfinite(${column})`;
  switch (node.op) {
    case 'eq':
      return `(${column} >= ${start(y)} AND ${column} < ${start(y + 1)})`;
    case 'gt':
      return `(${column} >= ${start(y + 1)} AND ${finite})`;
    case 'gte':
      return `(${column} >= ${start(y)} AND ${finite})`;
    case 'lt':
      return `(${column} < ${start(y)} AND ${finite})`;
    case 'lte':
      return `(${column} < ${start(y + 1)} AND ${finite})`;
  }
}

/** The keys a condition on personKey requires it to equal (`eq`, `in`), or null for any other node. */
function personKeysOf(node: WhereNode): WhereValue[] | null {
  if (node.kind === 'compare') return !node.target.released && node.op === 'eq' ? [node.value] : null;
  if (node.kind === 'in' || node.kind === 'nin')
    return !node.target.released && node.kind === 'in' ? node.values : null;
  return null;
}

/** The values a condition on a HASH name requires it to equal (`eq`, `in`), or null for any other node. */
function hashValuesOf(node: WhereNode): { released: ReleasedField; values: WhereValue[] } | null {
  const released = node.kind === 'compare' || node.kind === 'in' ? node.target.released : null;
  if (!released || released.transform !== FieldTransform.HASH) return null;
  if (node.kind === 'compare') return node.op === 'eq' ? { released, values: [node.value] } : null;
  if (node.kind === 'in') return { released, values: node.values };
  return null;
}

/**
 * Conditions on raw columns that a filter on a GENERALIZE name implies (a year is a range of dates,
 * a band a range of integers, a prefix a range of strings): added beside the filter, never instead
 * of it, so that an index on the raw column finds the rows. Only for conditions every matching row
 * must meet (the top-level `and`s: under `or` or `not` an added bound could change the answer), and
 * each is implied by the released comparison, so the answer is the same with or without it. HASH
 * has none: a keyed hash orders nothing, and its key never enters an index. personKey equal to one
 * of some keys implies the records of those persons (`personKeyAmong`).
 */
function impliedBounds(node: WhereNode, c: WhereContext): string[] {
  if (node.kind === 'and') return node.children.flatMap((child) => impliedBounds(child, c));
  // personKey equal to one of some keys: the records of those persons in the linkage run in force,
  // found by hashing each linked record once, where the filter itself is a subquery per record.
  const keys = personKeysOf(node);
  if (keys && c.options.personKeyAmong) {
    return keys.length ? [c.options.personKeyAmong(c.params.add(keys.map(String), 'text[]'))] : [];
  }
  // A HASH name equal to one of some values: the records filed under those values' prefixes in the
  // agreement's lookup table, where the data plane has one.
  const hashed = hashValuesOf(node);
  if (hashed && c.options.hashAmong) {
    const asked = hashed.values.map(String);
    const among = asked.length
      ? c.options.hashAmong(hashed.released, c.params.lazy(asked, 'text[]'), asked)
      : null;
    return among === null ? [] : [among];
  }
  if (node.kind !== 'compare') return [];
  const released = node.target.released;
  if (!released || released.transform !== FieldTransform.GENERALIZE) return [];
  const field = sourceField(released, c.dataset);
  const column = columnRef(c.tableAlias, field.name);
  const { op, value } = node;
  const type = field.type as FieldTypeName;
  if (type === 'DATE' || type === 'DATETIME') {
    const y = Number(value);
    if (!Number.isInteger(y) || y < 1 || y > 9998) return [];
    const start = (year: number) =>
      type === 'DATE'
        ? c.params.add(`${String(year).padStart(4, '0')}-01-01`, 'date')
        : c.params.add(`${String(year).padStart(4, '0')}-01-01T00:00:00Z`, 'timestamptz');
    switch (op) {
      case 'eq':
        return [`(${column} >= ${start(y)})`, `(${column} < ${start(y + 1)})`];
      case 'gt':
        return [`(${column} >= ${start(y + 1)})`];
      case 'gte':
        return [`(${column} >= ${start(y)})`];
      case 'lt':
        return [`(${column} < ${start(y)})`];
      case 'lte':
        return [`(${column} < ${start(y + 1)})`];
      case 'neq':
        return [];
    }
  }
  if (type === 'INTEGER') {
    // band(v) <= v <= band(v) + 4, and bands are multiples of 5.
    const b = Number(value);
    if (!Number.isInteger(b)) return [];
    const at = (n: number) => c.params.add(n, 'bigint');
    switch (op) {
      case 'eq':
        return [`(${column} >= ${at(b)})`, `(${column} <= ${at(b + 4)})`];
      case 'gt':
        return [`(${column} > ${at(b)})`];
      case 'gte':
        return [`(${column} >= ${at(b)})`];
      case 'lt':
        return [`(${column} <= ${at(b + 3)})`];
      case 'lte':
        return [`(${column} <= ${at(b + 4)})`];
      case 'neq':
        return [];
    }
  }
  if (type === 'STRING' && typeof value === 'string') {
    // p = left(s, 3) is a prefix of s, so s >= p: p > X and p >= X imply the same of s. p < X implies
    // s < X only where X has at most 3 characters (then p < X is decided within p's characters, or
    // p is shorter than 3 and is all of s). For a longer X, p may be a proper prefix of X (p "abc",
    // X "abcd") whatever s holds after it: a bound on s there would make the answer depend on the
    // unreleased characters, so there is none.
    const sorted = `${column} COLLATE "C"`;
    const length = [...value].length;
    switch (op) {
      case 'eq':
        return length === 3
          ? [`(${sorted} ^@ ${c.params.add(value, 'text')})`]
          : [`(${sorted} = ${c.params.add(value, 'text')})`];
      case 'gt':
        return [`(${sorted} > ${c.params.add(value, 'text')})`];
      case 'gte':
        return [`(${sorted} >= ${c.params.add(value, 'text')})`];
      case 'lt':
        return length <= 3 ? [`(${sorted} < ${c.params.add(value, 'text')})`] : [];
      case 'lte':
      case 'neq':
        return [];
    }
  }
  return [];
}

/** One member of a released row as the response carries it: its key, released name and SQL. */
export interface ProjectedColumn {
  key: string;
  name: string;
  type: ReleasedType;
  /** The value as the response carries it (see {@link releasedJsonExpression}). */
  expression: string;
  /** The value as a page's statement selects it (see {@link releasedTextExpression}). */
  text: string;
}

const RESPONSE_KEY = /^[_A-Za-z][_0-9A-Za-z]*$/;

/**
 * The projection of a row: for each [response key, released name], the released value as the
 * response carries it. The one place a released name becomes a value: row pages and exports build
 * their rows from it. Throws PolicyError FORBIDDEN for a name not released (personKey only where
 * the grant has linkage and `options.personKey` is given) or a key that is not a GraphQL name.
 */
export function projection(
  columns: readonly (readonly [string, string])[],
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): ProjectedColumn[] {
  if (grant.datasetId !== dataset.id) throw new PolicyError('FORBIDDEN', 'The grant is for another dataset');
  return columns.map(([key, name]) => {
    if (typeof key !== 'string' || !RESPONSE_KEY.test(key)) throw new PolicyError('FORBIDDEN', 'Not granted');
    const target = releasedTarget(grant, name, options);
    if (target.released) {
      const { released } = target;
      return {
        key,
        name,
        type: target.type,
        expression: releasedJsonExpression(released, dataset, tableAlias, hmacKeyParam),
        text: releasedTextExpression(released, dataset, tableAlias, hmacKeyParam),
      };
    }
    const expression = targetExpression(target, dataset, tableAlias, hmacKeyParam, options);
    return { key, name, type: target.type, expression, text: `(${expression})::text` };
  });
}

/**
 * A SELECT list of released values (`<expression> AS "<name>"`) for the named released fields
 * (duplicates once): {@link projection} with each name as its own key.
 */
export function selectListSql(
  names: string[],
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): string {
  const unique = [...new Set(names)];
  return projection(
    unique.map((name) => [name, name] as const),
    grant,
    dataset,
    tableAlias,
    hmacKeyParam,
    options,
  )
    .map((column) => `${column.expression} AS ${quoteIdent(column.name)}`)
    .join(', ');
}
