import { PolicyError, SettingParams, SqlParams, projection } from '@broker/policy';
import { type HashTableWanted, recordTable } from '@broker/registry';
import type { PersonKeyTable } from '@broker/linkage';
import { type HashLookups, pageSelection } from './page-sql';
import type { Plan } from './plan';

/** The formats of an export: `Accept: text/csv` or `application/x-ndjson`. */
export type ExportFormat = 'csv' | 'ndjson';

/**
 * How a CSV export writes its text cells: as released (the default, for R, Python or Stata), or,
 * with `?formulas=escape`, with a `'` before a text cell that begins with a character a spreadsheet
 * reads as the start of a formula (CSV injection, CWE-1236; OWASP's list: {@link FORMULA_START}).
 */
export type FormulaHandling = 'verbatim' | 'escape';

/** The characters that make a cell a formula when they begin it, as OWASP's "CSV Injection" lists them. */
export const FORMULA_START: readonly string[] = ['=', '+', '-', '@', '\t', '\r'];

/**
 * How an export's text cells are written, from its `formulas` query parameter (absent: verbatim),
 * or a message for a value that is not `escape`, or for `formulas` on an NDJSON export, which has
 * no cells a spreadsheet reads.
 */
export function formulaHandling(
  formulas: unknown,
  format: ExportFormat,
): { handling: FormulaHandling; message?: never } | { message: string; handling?: never } {
  if (formulas === undefined) return { handling: 'verbatim' };
  if (formulas !== 'escape') return { message: 'formulas takes one value: escape' };
  if (format !== 'csv') return { message: 'formulas=escape applies to a CSV export (Accept: text/csv) only' };
  return { handling: 'escape' };
}

/**
 * FORMULA_START as the class of a PostgreSQL regular expression, in an escape string (`E'…'`, read
 * the same whatever `standard_conforming_strings` is): each character escaped for the class (`\\-`,
 * `\\=`…), a tab and a CR written `\\t` and `\\r`.
 */
const FORMULA_CLASS = `[${FORMULA_START.map((c) => (c === '\t' ? '\\\\t' : c === '\r' ? '\\\\r' : `\\\\${c}`)).join('')}]`;

/**
 * A text cell's value with a `'` before it where its first character is one of FORMULA_START, in
 * SQL: one regexp_replace, so that the released value's expression (a HASH's among them) is
 * evaluated once; the empty match at the start before one of them is replaced by the quote, and
 * null stays null.
 */
function formulaEscaped(expression: string): string {
  return `regexp_replace(${expression}, E'^(?=${FORMULA_CLASS})', '''')`;
}

/**
 * What an export runs, in the request's snapshot: the count (or the staging of the selected rows'
 * ids, when releases are recorded) first, then the rows, in that order.
 */
export interface ExportStatements {
  /** How many rows the export selects. */
  count: { text: string; values: unknown[] };
  /** The random row id (`_rid`) of each row the export selects: the list its release records. */
  rids: { text: string; values: unknown[] };
  /**
   * The rows, as PostgreSQL's own `COPY … TO STDOUT` writes them: CSV, or one JSON object per line.
   * COPY takes no bind parameters, so the values it needs are first set in the transaction by
   * `settings` (see {@link SettingParams}), with the COPY's time limit. `probe` is the COPY's query
   * cut to no row: run after `settings`, it is parsed and planned as the COPY will be, so that a
   * statement PostgreSQL refuses is found before anything is recorded or sent.
   */
  rows: { settings: { text: string; values: unknown[] }; copy: string; probe: string };
  /** The CSV header line (the nodes' keys), or null for NDJSON. */
  header: string | null;
  /** The lookup table of pseudonyms a filter on personKey read, if one did (see PersonKeyIndex). */
  personKeyTable: PersonKeyTable | null;
  /** The HASH names a filter looked up by equality (their tables: see HashLookupIndex). */
  hashed: HashTableWanted[];
}

/** How long an export's COPY may run: a client reading a million rows slowly takes minutes. */
export const EXPORT_STATEMENT_TIMEOUT = '1h';

/**
 * The statements of an export: every row the root field selects, in its order, from its cursor on,
 * at most `first` where the caller gave it. The population, filter, ordering and projection are
 * those of a page (the same libs/policy calls), so an export holds exactly the rows its pages would;
 * `formulas` is how a CSV export's text cells are written (see {@link formulaHandling}, which
 * refuses it for NDJSON).
 */
export function exportSql(
  plan: Plan,
  format: ExportFormat,
  recipientAgencyId: string,
  hashes?: HashLookups,
  formulas: FormulaHandling = 'verbatim',
): ExportStatements {
  const selection = (params: SqlParams, of: Plan = plan) => {
    // Every row the filter selects, or at most `limit`: a HASH filter's table is read as for a page.
    const { hmacKey, t, options, conditions, ordering } = pageSelection(
      of,
      params,
      recipientAgencyId,
      hashes,
      plan.limit,
    );
    if (plan.after) {
      const after = ordering.after(plan.after, params);
      if (after === null) throw new PolicyError('BAD_USER_INPUT', 'after is not a cursor of this query');
      conditions.push(after);
    }
    const limit = plan.limit === null ? '' : ` LIMIT ${params.add(plan.limit, 'bigint')}`;
    const where = `FROM ${recordTable(plan.shape.slug)} ${t}
      WHERE ${conditions.length ? conditions.join(' AND ') : 'TRUE'}`;
    // Without a limit, which rows are selected does not depend on their order: the count skips it.
    const unordered = plan.limit === null ? where : `${where} ORDER BY ${ordering.orderBy}${limit}`;
    return { from: `${where} ORDER BY ${ordering.orderBy}${limit}`, unordered, hmacKey, options, t };
  };

  // Without a limit or a cursor, which rows are selected does not depend on their order, and the
  // count skips it: built without the ordering, so that its statement carries no value that only the
  // ordering reads (a HASH name's key, personKey's scope), which PostgreSQL could not type.
  const countParams = new SqlParams();
  const counted = selection(
    countParams,
    plan.limit === null && !plan.after ? { ...plan, orderBy: [] } : plan,
  );
  const rids = { text: `SELECT t."_rid" ${counted.unordered}`, values: countParams.values };
  const count = { text: `SELECT count(*)::int AS n FROM (${rids.text}) s`, values: rids.values };

  const rowParams = new SettingParams();
  const selected = selection(rowParams);
  const authorised = new Set(plan.fields);
  if (plan.columns.some(([, name]) => !authorised.has(name)))
    throw new PolicyError('FORBIDDEN', 'Not granted');
  const columns = projection(
    plan.columns,
    plan.grant,
    plan.shape,
    selected.t,
    selected.hmacKey,
    selected.options,
  );
  let select: string;
  let copy: string;
  if (format === 'ndjson') {
    const object = `json_build_object(${columns.map((c) => `'${c.key}', ${c.expression}`).join(', ')})::text`;
    // One column of JSON, which never holds a raw control character (JSON escapes them): with a
    // control character as CSV's quote and delimiter, COPY writes each object as it is, one a line.
    select = `SELECT ${object} ${selected.from}`;
    copy = `COPY (${select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;
  } else {
    // CSV (RFC 4180), as COPY writes it: null is an empty cell; text is always quoted (FORCE_QUOTE,
    // so an empty string is `""`); numbers, booleans, dates and instants are their text, and never
    // hold a comma, a quote or a line break. With formulas escaped, only text cells are: a number's
    // text begins with `-` only when it is negative, and stays a number; a boolean's, a date's or an
    // instant's never begins with one of FORMULA_START. The header is the nodes' keys, GraphQL names
    // (`projection` refuses any other), which never begin with one either.
    const text = (expression: string) => (formulas === 'escape' ? formulaEscaped(expression) : expression);
    const list = columns.map((c, i) =>
      c.type === 'String' ? `${text(c.expression)} AS c${i}` : `(${c.expression})::text AS c${i}`,
    );
    const quoted = columns.flatMap((c, i) => (c.type === 'String' ? [`c${i}`] : []));
    const force = quoted.length ? `, FORCE_QUOTE (${quoted.join(', ')})` : '';
    select = `SELECT ${list.join(', ')} ${selected.from}`;
    copy = `COPY (${select}) TO STDOUT WITH (FORMAT csv${force})`;
  }
  const header = format === 'csv' ? columns.map((c) => c.key).join(',') : null;
  const probe = `SELECT 1 FROM (${select}) q LIMIT 0`;
  return {
    count,
    rids,
    rows: { settings: rowParams.settings(), copy, probe },
    header,
    personKeyTable: counted.options.lookedUp(),
    hashed: counted.options.hashed(),
  };
}
