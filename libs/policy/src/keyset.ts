/**
 * The order of a page and its keyset: where the next page starts, as a condition on the same
 * expressions the page is ordered by, so that PostgreSQL walks an index from the last row instead
 * of counting past every row before it. Page 1,000 then costs what page 1 costs.
 *
 * The order is the caller's terms on released values (DESIGN §4.2: text in code point order, nulls
 * last ascending and first descending), then the tie-break: the random row id, then the record key
 * (only where two random ids collide). An ordering that reaches the raw key needs no tie-break: the
 * key is unique and never null. The tie-break runs in the direction of the caller's last term, so
 * that one index serves an ordering and its reverse.
 */
import { type ReleasedNameOptions, releasedTarget } from './data-where';
import { PolicyError } from './policy-error';
import { isRawKey } from './released-field';
import { type CompiledGrant, type DataOrderBy, type DatasetShape, FieldTransform } from './policy.types';
import { type SqlParams, columnRef } from './sql-builder';
import {
  type HmacKeyParam,
  MAX_ORDER_BY,
  keptText,
  pgTypeOfReleased,
  releasedExpression,
} from './sql-compiler';

/** One term of a page's order. */
interface OrderTerm {
  /** The expression as ordered (text in the "C" collation). */
  sorted: string;
  /** The expression as the cursor keeps it: text that reads back exactly, whatever the session. */
  kept: string;
  /** How a kept value is turned back into a value of the expression's type. */
  readBack: (placeholder: string) => string;
  descending: boolean;
  /** Never null (a raw required field, the key, the row id): an ascending bound needs no null branch. */
  notNull: boolean;
}

/** A page's order, its cursor's values, and where the page after a cursor starts. */
export interface PageOrder {
  /** The ORDER BY list (without the keywords). */
  orderBy: string;
  /**
   * SQL of each value of a row's position, as text (see keptText): what a cursor seals, one column
   * each in a page's statement.
   */
  positionTerms: string[];
  /**
   * The condition "after this position" (values as {@link positionTerms} wrote them), or null when the
   * values do not fit this order (a cursor of another ordering).
   */
  after(values: readonly (string | null)[], params: SqlParams): string | null;
  /**
   * The same rows as {@link after}, as disjoint conditions each of which an index on the ordering's
   * expressions answers as one range (an equality prefix, then a bound or a null test): a page
   * after the cursor is the first rows of their union, in order. One condition where a single row
   * comparison says it all (one direction, nothing null to step over); null as for {@link after}.
   */
  afterBranches(values: readonly (string | null)[], params: SqlParams): string[] | null;
}

const COLUMN_TYPES: Record<string, string> = {
  STRING: 'text',
  INTEGER: 'integer',
  FLOAT: 'double precision',
  BOOLEAN: 'boolean',
  DATE: 'date',
  DATETIME: 'timestamptz',
};

/** The value a kept text stands for, as SQL of its placeholder (see {@link keptText}). */
export function readBack(pgType: string): (placeholder: string) => string {
  if (pgType === 'timestamptz') return (p) => `(${p}::timestamp AT TIME ZONE 'UTC')`;
  return (p) => `${p}::${pgType}`;
}

function term(expression: string, pgType: string, descending: boolean, notNull: boolean): OrderTerm {
  return {
    sorted: pgType === 'text' ? `${expression} COLLATE "C"` : expression,
    kept: keptText(expression, pgType),
    readBack: readBack(pgType),
    descending,
    notNull,
  };
}

/**
 * The caller's ordering terms on released values, checked: the one rule of what an ordering may
 * name and how each term sorts (text in code-point order, nulls last ascending and first
 * descending). Terms after the key are dropped: nothing can break a tie after it. Throws PolicyError
 * FORBIDDEN for a name the grant does not release, BAD_USER_INPUT for a malformed ordering.
 */
function orderTerms(
  orderBy: readonly DataOrderBy[],
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions,
): { terms: OrderTerm[]; total: boolean } {
  if (grant.datasetId !== dataset.id) throw new PolicyError('FORBIDDEN', 'The grant is for another dataset');
  if (!Array.isArray(orderBy)) throw new PolicyError('BAD_USER_INPUT', 'orderBy must be a list');
  if (orderBy.length > MAX_ORDER_BY) {
    throw new PolicyError('BAD_USER_INPUT', `orderBy has at most ${MAX_ORDER_BY} terms`);
  }
  const terms: OrderTerm[] = [];
  let total = false;
  for (const entry of orderBy) {
    const { field, direction } = (entry ?? {}) as Partial<DataOrderBy>;
    if (typeof field !== 'string') throw new PolicyError('BAD_USER_INPUT', 'orderBy needs a field');
    if (direction !== undefined && direction !== 'ASC' && direction !== 'DESC') {
      throw new PolicyError('BAD_USER_INPUT', 'The direction of an ordering must be ASC or DESC');
    }
    const target = releasedTarget(grant, field, options);
    if (total) continue; // after the key, nothing can break a tie
    const descending = direction === 'DESC';
    const released = target.released;
    if (!released) {
      if (!options.personKey) throw new PolicyError('FORBIDDEN', 'personKey is not released');
      terms.push(term(`(${options.personKey})`, 'text', descending, false));
      continue;
    }
    const source = dataset.fields.find((f) => f.name === released.source);
    const raw = released.transform === FieldTransform.RAW;
    const isKey = isRawKey(released, dataset);
    const expression = releasedExpression(released, dataset, tableAlias, hmacKeyParam);
    terms.push(
      term(expression, pgTypeOfReleased(released.type), descending, isKey || (raw && !!source?.required)),
    );
    total = isKey;
  }
  return { terms, total };
}

/** An ORDER BY list (without the keywords) of the caller's terms alone; '' for none. */
export function orderBySql(
  orderBy: DataOrderBy[],
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  _params: SqlParams,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): string {
  return orderTerms(orderBy, grant, dataset, tableAlias, hmacKeyParam, options)
    .terms.map(orderTermSql)
    .join(', ');
}

function orderTermSql(t: OrderTerm): string {
  return `${t.sorted} ${t.descending ? 'DESC NULLS FIRST' : 'ASC NULLS LAST'}`;
}

/**
 * The order of a page of released rows. Throws PolicyError FORBIDDEN for a name the grant does not
 * release, BAD_USER_INPUT for a malformed ordering.
 */
export function pageOrder(
  orderBy: readonly DataOrderBy[],
  grant: CompiledGrant,
  dataset: DatasetShape,
  tableAlias: string,
  hmacKeyParam: HmacKeyParam,
  options: ReleasedNameOptions = {},
): PageOrder {
  const { terms, total } = orderTerms(orderBy, grant, dataset, tableAlias, hmacKeyParam, options);
  if (!total) {
    const descending = terms.length ? terms[terms.length - 1].descending : false;
    const key = dataset.fields.find((f) => f.name === dataset.keyField);
    if (!key) throw new PolicyError('FORBIDDEN', "The agreement's grant does not match the dataset (key)");
    terms.push(term(columnRef(tableAlias, '_rid'), 'bigint', descending, true));
    terms.push(term(columnRef(tableAlias, key.name), COLUMN_TYPES[key.type], descending, true));
  }
  return {
    orderBy: terms.map(orderTermSql).join(', '),
    positionTerms: terms.map((t) => t.kept),
    after: (values, params) => {
      const branches = afterBranches(terms, values, params);
      return branches && (branches.length === 1 ? branches[0] : `(${branches.join(' OR ')})`);
    },
    afterBranches: (values, params) => afterBranches(terms, values, params),
  };
}

function afterBranches(
  terms: OrderTerm[],
  values: readonly (string | null)[],
  params: SqlParams,
): string[] | null {
  if (values.length !== terms.length) return null;
  if (!values.every((v) => v === null || typeof v === 'string')) return null;
  // The tie-break is never null; a position without it was not written here.
  if (terms.some((t, i) => t.notNull && values[i] === null)) return null;
  const placeholders = values.map((v, i) => (v === null ? null : terms[i].readBack(params.add(v, 'text'))));
  const descending = terms[0].descending;
  // One direction and no null to step over (descending, nulls come first: none is after a value):
  // one row comparison, which an index on the same expressions answers as a range.
  if (
    terms.every((t) => t.descending === descending) &&
    placeholders.every((p) => p !== null) &&
    (descending || terms.every((t) => t.notNull))
  ) {
    return [
      `(ROW(${terms.map((t) => t.sorted).join(', ')}) ${descending ? '<' : '>'} ROW(${placeholders.join(', ')}))`,
    ];
  }
  // Rows after the position, lexicographically: for each term i, those equal to it on the terms
  // before i and after it on term i. "After" on a term is a bound, or a null test where nulls come
  // after (ascending: nulls last) or a value comes after a null (descending: nulls first); each is
  // its own branch, so that every branch is an equality prefix and one range of an index. A run of
  // never-null terms in one direction at the end is one row comparison.
  const branches: string[] = [];
  const equal: string[] = [];
  for (let i = 0; i < terms.length; i++) {
    const rest = terms.slice(i);
    const direction = terms[i].descending;
    if (
      rest.every((t) => t.notNull && t.descending === direction) &&
      placeholders.slice(i).every((p) => p !== null)
    ) {
      const row = `(ROW(${rest.map((t) => t.sorted).join(', ')}) ${direction ? '<' : '>'} ROW(${placeholders.slice(i).join(', ')}))`;
      branches.push([...equal, row].join(' AND '));
      break;
    }
    const t = terms[i];
    const p = placeholders[i];
    const afterTerm: string[] =
      p === null
        ? t.descending
          ? [`(${t.sorted} IS NOT NULL)`]
          : []
        : [
            t.descending ? `(${t.sorted} < ${p})` : `(${t.sorted} > ${p})`,
            ...(t.descending || t.notNull ? [] : [`(${t.sorted} IS NULL)`]),
          ];
    for (const after of afterTerm) branches.push([...equal, after].join(' AND '));
    equal.push(p === null ? `(${t.sorted} IS NULL)` : `(${t.sorted} = ${p})`);
  }
  return branches.length ? branches : ['FALSE'];
}
