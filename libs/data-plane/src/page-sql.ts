import { ReleaseDigest } from '@broker/audit';
import { type PersonKeyParts, type PersonKeyTable, personKeyParts } from '@broker/linkage';
import {
  MAX_FIRST,
  PolicyError,
  columnRef,
  type HmacKeyParam,
  keptText,
  type ReleasedField,
  type ReleasedNameOptions,
  SqlParams,
  isPageSize,
  isRawKey,
  pageOrder,
  filteredPopulation,
  projection,
  quoteIdent,
  whereFieldNames,
} from '@broker/policy';
import {
  type HashLookupIndex,
  type HashTableWanted,
  hashLookupSql,
  hashTableOf,
  recordTable,
} from '@broker/registry';
import { sealCursor } from './cursor';
import type { Plan } from './plan';
import { NodeJsonWriter, type NodeTexts, nodeColumn } from './node-json';
import type { PageResult } from './response';

/** A page's statement, and how its rows become the page (see {@link pageRows}). */
export interface PageStatement {
  text: string;
  values: unknown[];
  /** Writes a row's node as JSON. */
  writer: NodeJsonWriter;
  /** The columns of a row that hold its position's values, in order. */
  positionColumns: string[];
  /** The lookup table of pseudonyms a filter on personKey read, if one did (see PersonKeyIndex). */
  personKeyTable: PersonKeyTable | null;
  /** The HASH names a filter looked up by equality (their tables: see HashLookupIndex). */
  hashed: HashTableWanted[];
}

/** What a statement needs to know of the lookup tables of HASH names: which serve (HashLookupIndex). */
export type HashLookups = Pick<HashLookupIndex, 'serves'>;

/** The column of a page's statement that holds the i-th value of the row's position. */
const positionColumn = (i: number) => `p${i}`;

/**
 * The one statement of a page: one row per record of the page (and one more, which says there is a
 * next page), in the page's order, each with its released values as text (the node's JSON is
 * written from them, see {@link NodeJsonWriter}), its position (the cursor's content) and, when
 * releases are recorded, its random row id. Every piece of
 * policy comes from libs/policy: the population (row filter and consent), the caller's filter and
 * ordering on released values, and the projection of released names. `head`, when given, adds
 * columns before the page's own (their parameters through `params`): the same on every row.
 */
export function pageSql(
  plan: Plan,
  recordReleases = false,
  recipientAgencyId = '',
  head?: (params: SqlParams) => string,
  hashes?: HashLookups,
): PageStatement {
  const params = new SqlParams();
  const { shape, grant } = plan;
  const { hmacKey, t, options, conditions, ordering } = pageSelection(
    plan,
    params,
    recipientAgencyId,
    hashes,
    plan.first,
  );
  // Keyset: the page starts right after the cursor's row, on the ordering's own expressions, as one
  // or more disjoint conditions that are each a range of an index on the ordering.
  const branches = plan.after ? ordering.afterBranches(plan.after, params) : [];
  if (branches === null) throw new PolicyError('BAD_USER_INPUT', 'after is not a cursor of this query');
  const order = ordering.orderBy;
  // Only names authorised for this plan reach the projection.
  const authorised = new Set(plan.fields);
  if (plan.columns.some(([, name]) => !authorised.has(name)))
    throw new PolicyError('FORBIDDEN', 'Not granted');
  const columns = projection(plan.columns, grant, shape, t, hmacKey, options);
  // The page's size is written in the statement, not bound: a prepared statement's generic plan then
  // knows how few rows it reads (a bound LIMIT counts as a tenth of the table, and PostgreSQL would
  // plan every execution anew). Checked here too: nothing but a bounded integer reaches the text.
  if (!isPageSize(plan.first)) {
    throw new PolicyError('BAD_USER_INPUT', `first must be between 1 and ${MAX_FIRST}`);
  }
  const limit = String(plan.first + 1);
  const before = head ? `${head(params)}, ` : '';
  // Every value the page needs, as text, each distinct expression selected once (PostgreSQL computes
  // every item of a SELECT list, equal or not): a value asked under two keys, and a position's value
  // that the node or the row id already has (a page ordered by a released date, say), are one column.
  const selected: string[] = [];
  const columnOf = new Map<string, string>();
  const select = (expression: string, name: string) => {
    const known = columnOf.get(expression);
    if (known) return known;
    columnOf.set(expression, name);
    selected.push(`${expression} AS ${name}`);
    return name;
  };
  // Which records leave, by random row id, for subject access reports (its text as a position keeps it).
  if (recordReleases) select(keptText(columnRef(t, '_rid'), 'bigint'), 'rid');
  // Each released value as text: the node's JSON is written from them by NodeJsonWriter
  // (PostgreSQL's json_build_object costs five times their text).
  const names = columns.map((c, i) => select(c.text, nodeColumn(i)));
  // The row's position in the page's order, a text value each: what its cursor seals.
  const positionColumns = ordering.positionTerms.map((term, i) => select(term, positionColumn(i)));
  const where = (extra: string[]) => [...conditions, ...extra].join(' AND ') || 'TRUE';
  const table = `${recordTable(shape.slug)} ${t}`;
  // The page is cut first (LIMIT right above the ORDER BY: with an index on the ordering, PostgreSQL
  // reads only the page's rows from the cursor on), and only its rows' values are then computed.
  // Several branches (an ascending order on a value that may be null, mixed directions): each reads
  // at most the page from its own index range, and the page is the first rows of their union.
  const rows =
    branches.length > 1
      ? `SELECT ${t}.* FROM (${branches
          .map((b) => `(SELECT ${t}.* FROM ${table} WHERE ${where([b])} ORDER BY ${order} LIMIT ${limit})`)
          .join(' UNION ALL ')}) ${t} ORDER BY ${order} LIMIT ${limit}`
      : `SELECT ${t}.* FROM ${table} WHERE ${where(branches)} ORDER BY ${order} LIMIT ${limit}`;
  // The outer ORDER BY is the page's own: the rows come out in the order they were cut in (PostgreSQL
  // sees they already are, and sorts nothing), whatever the plan.
  const text = `SELECT ${before}${selected.join(', ')}
    FROM (${rows}) ${t} ORDER BY ${order}`;
  return {
    text,
    values: params.values,
    writer: new NodeJsonWriter(columns, names),
    positionColumns,
    personKeyTable: options.lookedUp(),
    hashed: options.hashed(),
  };
}

/**
 * Whether one plan of a page's statement is best whatever its values, so that PostgreSQL may keep a
 * generic plan for it (see Database.read): no filter of the caller's, or filters only on the page's
 * first ordering name (whose index serves the filter and the order alike), or an equality on the
 * dataset's key (one row, by its unique index). A filter on another name is planned for its values
 * on every execution, as a DBA's query is: they decide whether to walk the ordering's index or read
 * the filter's and sort (a value few rows have), and a generic plan would guess. The agreement's
 * row filter does not count: it is written in as constants (SqlParams.rowFilterParams), so a generic
 * plan proves its population's partial indexes and walks them, as a plan made for the values does.
 */
export function planIsStable(plan: Plan): boolean {
  if (!plan.where) return true;
  const names = whereFieldNames(plan.where);
  const first = plan.orderBy[0]?.field;
  if (first !== undefined && names.every((name) => name === first)) return true;
  const entries = Object.entries(plan.where);
  if (entries.length !== 1) return false;
  const [name, filter] = entries[0];
  const released = plan.grant.released.get(name);
  return (
    released !== undefined &&
    isRawKey(released, plan.shape) &&
    filter !== null &&
    typeof filter === 'object' &&
    Object.keys(filter).length === 1 &&
    (filter as { eq?: unknown }).eq !== undefined
  );
}

/** A row of a page's statement (see {@link pageSql}): its values, position and row id as text. */
export type PageRow = NodeTexts & {
  /** The record's random row id, when releases are recorded. */
  rid?: string;
};

/**
 * A page's rows as its statement returned them, before its JSON is written: what its release records
 * (how many rows, and their row ids as array text) at once, and the page itself on {@link PageRows.write}.
 * The data plane starts the release's audit append with the first and writes the page while the
 * append is on its way: nothing leaves before it commits.
 */
export interface PageRows {
  kind: 'ROWS';
  rowCount: number;
  /** The returned rows' random ids as PostgreSQL's array text, when releases are recorded. */
  rids: string | null;
  /** The digest of `rids` (see ReleaseDigest), or null without them. */
  releaseDigest: string | null;
  /** The page: its nodes' JSON, its cursor. */
  write(): PageResult;
}

/**
 * How many rows' JSON is written at a time while a page's rows arrive (see {@link PageBuilder}):
 * each batch's text becomes bytes at once, so that neither a long string nor its rows outlive it.
 */
const WRITE_BATCH = 64;

/**
 * A page built from its statement's rows, one at a time: the first `first` are the page, one more
 * says there is a next page. Its records are their row ids as array text; its nodes' JSON is written
 * by the statement's writer, joined; its cursor is the last row's position, sealed.
 *
 * `eager`: the nodes' JSON is written as the rows come (a batch at a time), while PostgreSQL is still
 * sending the rest, so that little is left to write once the last row is in. Otherwise the rows are
 * kept and written on {@link PageRows.write}, while the release's append is on its way. Either way
 * the same bytes; nothing of it leaves before the release is recorded.
 */
export class PageBuilder {
  private seen = 0;
  private rids: string | null = null;
  /**
   * The list's text since the last part added to its digest: a page written as its rows arrive adds
   * each batch's, so that the digest is mostly done when the last row is in (a 1,000-row page's list
   * is 17 kB to hash, on the way to the release's append otherwise).
   */
  private unhashed = '';
  private readonly digest = new ReleaseDigest();
  private last: PageRow | null = null;
  /** Rows of the page not written yet. */
  private rows: PageRow[] = [];
  /** The nodes' JSON written so far, as bytes. */
  private readonly chunks: Buffer[] = [];
  private written = 0;
  private unrepresentable = false;
  private finished = false;

  constructor(
    private readonly plan: Pick<Plan, 'first' | 'cursor'>,
    private readonly statement: Pick<PageStatement, 'writer' | 'positionColumns'>,
    private readonly eager: boolean,
  ) {}

  /** The next row, in the statement's order. */
  push(row: PageRow): void {
    if (this.finished) throw new Error('a page takes no row once it is finished');
    this.seen += 1;
    // The one row past the page: it only says that there is a next page.
    if (this.seen > this.plan.first) return;
    // As PostgreSQL writes a bigint[] as text, which the release's digest is computed over.
    if (this.seen === 1) {
      this.rids = row.rid === undefined ? null : `{${row.rid}`;
      if (this.rids !== null) this.unhashed = this.rids;
    } else if (this.rids !== null) {
      const part = `,${row.rid!}`;
      this.rids += part;
      this.unhashed += part;
    }
    this.last = row;
    this.rows.push(row);
    if (this.eager && this.rows.length === WRITE_BATCH) {
      this.writeRows();
      this.hashRids();
    }
  }

  /** Adds the list's text not yet in its digest. */
  private hashRids(): void {
    if (!this.unhashed) return;
    this.digest.add(this.unhashed);
    this.unhashed = '';
  }

  /** The page's rows are all in: what its release records at once, and the page on `write`. */
  finish(): PageRows {
    this.finished = true;
    const rowCount = Math.min(this.seen, this.plan.first);
    const rids = this.rids === null ? null : `${this.rids}}`;
    let releaseDigest: string | null = null;
    if (rids !== null) {
      this.unhashed += '}';
      this.hashRids();
      releaseDigest = this.digest.digest();
    }
    let done = false;
    const write = (): PageResult => {
      if (done) throw new Error('a page is written once');
      done = true;
      this.writeRows();
      let endCursor: string | null = null;
      if (this.last) {
        const position: (string | null)[] = [];
        for (const column of this.statement.positionColumns) position.push(this.last[column] ?? null);
        endCursor = sealCursor(this.plan.cursor, position);
        this.last = null;
      }
      const nodes = Buffer.concat([OPEN, ...this.chunks, CLOSE]);
      // The batches are let go: the page is referenced until its release is recorded, and only its
      // answer need outlive the writing.
      this.chunks.length = 0;
      return {
        kind: 'ROWS',
        rids,
        releaseDigest,
        nodes,
        unrepresentable: this.unrepresentable,
        pageInfo: { hasNextPage: this.seen > this.plan.first, endCursor },
        rowCount,
      };
    };
    return { kind: 'ROWS', rowCount, rids, releaseDigest, write };
  }

  /** Writes the rows not written yet, after those that were, and lets them go. */
  private writeRows(): void {
    if (!this.rows.length) return;
    const { json, unrepresentable } = this.statement.writer.writeNodes(
      this.rows,
      this.rows.length,
      this.written ? ',' : '',
      '',
    );
    this.chunks.push(Buffer.from(json, 'utf8'));
    this.written += this.rows.length;
    this.unrepresentable ||= unrepresentable;
    this.rows = [];
  }
}

const OPEN = Buffer.from('[');
const CLOSE = Buffer.from(']');

/**
 * A page from its statement's rows, all read (see {@link PageBuilder}): written on
 * {@link PageRows.write}.
 */
export function pageRows(
  plan: Pick<Plan, 'first' | 'cursor'>,
  statement: Pick<PageStatement, 'writer' | 'positionColumns'>,
  rows: PageRow[],
): PageRows {
  const builder = new PageBuilder(plan, statement, false);
  for (const row of rows) builder.push(row);
  return builder.finish();
}

/**
 * What a page's statement and an export's share, on `params`: the agreement's key (a parameter the
 * first time a HASH value uses it), the record table's alias, the released names' options (HASH
 * lookups for `first` rows, in the page's order; null: every row), the population's and the
 * caller's conditions, and the page's order, whose ties break on the random row id, never on a
 * value the agreement does not release (pageOrder).
 */
export function pageSelection(
  plan: Plan,
  params: SqlParams,
  recipientAgencyId: string,
  hashes: HashLookups | undefined,
  first: number | null,
) {
  const { shape, grant } = plan;
  const hmacKey = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  // A HASH filter reads its table by how many rows it must find, and in which order.
  const page = { first: first ?? Number.POSITIVE_INFINITY, inRowIdOrder: plan.orderBy.length === 0 };
  const options = releasedNameOptions(plan, params, recipientAgencyId, t, hmacKey, hashes, page);
  const filter = plan.where ? { where: plan.where, hmacKey, options } : null;
  const conditions = filteredPopulation(grant, shape, [plan.purpose], t, params, filter);
  const ordering = pageOrder(plan.orderBy, grant, shape, t, hmacKey, options);
  return { hmacKey, t, options, conditions, ordering };
}

/**
 * How many rows a statement's filter must find, and in which order (see HashLookupIndex.serves): a
 * page's `first` in its order; every row (a count, an export without a limit) in any.
 */
export interface HashPage {
  first: number;
  /** In the row id's order: the page has no `orderBy`. */
  inRowIdOrder: boolean;
}

/** Every row the filter selects, in any order: a count's, an export's without a limit. */
const EVERY_ROW: HashPage = { first: Number.POSITIVE_INFINITY, inRowIdOrder: false };

/**
 * The data-plane options of a statement's released names: personKey's SQL, where the grant has
 * linkage (its parameters added the first time it is used; the pseudonym is scoped to recipient
 * agency and purpose), and the lookup tables of HASH names (see {@link hashOptions}) for `page`.
 * `lookedUp` says the personKey lookup table a filter read, once the statement is built.
 */
function releasedNameOptions(
  plan: Pick<Plan, 'grant' | 'shape' | 'purpose' | 'agreement'>,
  params: SqlParams,
  recipientAgencyId: string,
  t: string,
  hmacKey: HmacKeyParam,
  hashes: HashLookups | undefined,
  page: HashPage,
): ReleasedNameOptions & { lookedUp(): PersonKeyTable | null; hashed(): HashTableWanted[] } {
  // Added to personKey's object, never spread from it: its getter must run only when personKey is used.
  return Object.assign(
    personKeyOptions(plan, params, recipientAgencyId, t),
    hashOptions(plan, params, t, hmacKey, hashes, page),
  );
}

/**
 * The lookup tables of HASH names in a statement's filter: `hashAmong` reads the table of a name
 * that `hashes` says serves the asked values for `page` (see ReleasedNameOptions), and `hashed`
 * lists every HASH name filtered by equality, whose tables are then built if they are not
 * (HashLookupIndex.want).
 */
export function hashOptions(
  plan: Pick<Plan, 'shape' | 'agreement' | 'grant'>,
  params: SqlParams,
  t: string,
  hmacKey: HmacKeyParam,
  hashes?: HashLookups,
  page: HashPage = EVERY_ROW,
): Pick<ReleasedNameOptions, 'hashAmong'> & { hashed(): HashTableWanted[] } {
  const { agreement, shape } = plan;
  // The tables of the grant's population: the records its row filter admits (HashLookupIndex).
  const { rowFilter } = plan.grant;
  const hashed: HashTableWanted[] = [];
  const hashAmong = (
    released: ReleasedField,
    values: () => string,
    asked: readonly string[],
  ): string | null => {
    if (!hashed.some((h) => h.released === released)) {
      hashed.push({ agreementId: agreement.id, shape, released, hmacKey: agreement.hmacKey, rowFilter });
    }
    // Not for a value the table does not file, nor a common one for this page's size: that filter
    // hashes in the page's order.
    const table = hashTableOf(agreement.id, shape, released, rowFilter);
    if (!hashes?.serves(table, asked, page.first, page.inRowIdOrder)) return null;
    return hashLookupSql({
      params,
      agreementId: agreement.id,
      shape,
      released,
      hmacKey,
      tableAlias: t,
      values: values(),
      rowFilter,
    });
  };
  return { hashAmong, hashed: () => hashed };
}

/**
 * personKey's SQL, where the grant has linkage: its parameters are added the first time it is used,
 * and it needs the recipient agency (the pseudonym is scoped to recipient and purpose). A filter
 * reads the lookup table of the grant's population only (see PersonKeyIndex). `lookedUp` says the
 * lookup table a filter read, once the statement is built, or null.
 */
function personKeyOptions(
  plan: Pick<Plan, 'grant' | 'shape' | 'purpose' | 'agreement'>,
  params: SqlParams,
  recipientAgencyId: string,
  t: string,
): ReleasedNameOptions & { lookedUp(): PersonKeyTable | null } {
  if (!plan.grant.linkage) return { lookedUp: () => null };
  let parts: PersonKeyParts | undefined;
  let lookedUp: PersonKeyTable | null = null;
  const personKey = () => {
    if (!recipientAgencyId) throw new PolicyError('FORBIDDEN', 'Not granted');
    return (parts ??= personKeyParts(
      params,
      plan.shape.id,
      recipientAgencyId,
      plan.purpose,
      `${t}.${quoteIdent(plan.shape.keyField)}::text`,
      { agreementId: plan.agreement.id, rowFilter: plan.grant.rowFilter, shape: plan.shape },
    ));
  };
  return {
    get personKey() {
      return personKey().value;
    },
    personKeyAmong: (keys) => {
      const key = personKey();
      lookedUp = key.table;
      return key.among(keys);
    },
    lookedUp: () => lookedUp,
  };
}
