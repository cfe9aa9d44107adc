import { quoteIdent } from '@broker/core';
import {
  type CompiledGrant,
  type CountCell,
  type DataWhere,
  GrantAccess,
  PolicyError,
  SqlParams,
  releasedJsonExpression,
  rowFilterSql,
  protectedPattern,
  whereSql,
} from '@broker/policy';
import { type DatasetShapeRecord, recordTable } from '@broker/registry';
import type { ActiveAgreement } from './caller-schema';

/** At most this many groups in the full table of an aggregate (before `where` picks groups). */
export const MAX_GROUPS = 10_000;

/** A grant under which the caller can read the dataset's rows, and the purposes it serves. */
export interface ReadableGrant {
  grant: CompiledGrant;
  purposes: string[];
}

/** What an aggregate counts, authorised: see `authorise` in the data-plane service. */
export interface AggregatePlan {
  shape: DatasetShapeRecord;
  agreement: ActiveAgreement;
  grant: CompiledGrant;
  purpose: string;
  groupBy: string[];
  where: DataWhere | null;
  /** Every ROWS grant of the caller's active agreements over this dataset, any purpose. */
  readable: ReadableGrant[];
}

/** One group of an aggregate's answer. */
export interface AggregateGroup {
  key: Record<string, unknown>;
  count: number | null;
  suppressed: boolean;
}

/**
 * The rows of the grant's population (row filter, consent for the purpose) as a WHERE condition.
 * Shared by row pages and aggregates, so both count the same people.
 */
export function populationConditions(
  grant: CompiledGrant,
  shape: DatasetShapeRecord,
  purposes: string[],
  t: string,
  params: SqlParams,
): string[] {
  const conditions: string[] = [];
  if (grant.rowFilter) conditions.push(rowFilterSql(grant.rowFilter, shape, t, params));
  if (grant.requireConsent) {
    // Only subjects whose latest consent record for the purpose grants it; none recorded is no.
    if (!shape.subjectField) throw new PolicyError('FORBIDDEN', 'Not granted');
    const purpose =
      purposes.length === 1
        ? `= ${params.add(purposes[0], 'text')}`
        : `= ANY (${params.add(purposes, 'text[]')})`;
    conditions.push(
      `EXISTS (SELECT 1 FROM consent_current c WHERE c.dataset_id = ${params.add(shape.id, 'uuid')}
         AND c.purpose ${purpose}
         AND c.subject_id = ${t}.${quoteIdent(shape.subjectField)}::text AND c.granted)`,
    );
  }
  return conditions;
}

/**
 * The one statement of an aggregate: the full table of counts of the population by the released
 * values of `groupBy`, each group with how many of its records the caller can read as rows under a
 * ROWS grant (`v`) and whether the caller's `where` selects it. `where` names grouped fields only, so
 * it holds for all of a group's records or for none.
 */
export function aggregateSql(plan: AggregatePlan): { text: string; values: unknown[] } {
  const params = new SqlParams();
  const { shape, grant } = plan;
  const hmacKey = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  const conditions = populationConditions(grant, shape, [plan.purpose], t, params);
  const groups = plan.groupBy.map((name) => {
    const released = grant.released.get(name);
    if (!released) throw new PolicyError('FORBIDDEN', 'Not granted');
    return releasedJsonExpression(released, shape, t, hmacKey);
  });
  let visible: string;
  if (grant.access === GrantAccess.ROWS) {
    visible = 'count(*)';
  } else if (plan.readable.length) {
    const readable = plan.readable.map(({ grant: rows, purposes }) => {
      const parts = populationConditions(rows, shape, purposes, t, params);
      return parts.length ? `(${parts.join(' AND ')})` : 'TRUE';
    });
    visible = `count(*) FILTER (WHERE ${readable.join(' OR ')})`;
  } else {
    visible = '0';
  }
  const selected = plan.where
    ? `bool_or((${whereSql(plan.where, grant, shape, t, params, hmacKey)}) IS TRUE)`
    : 'TRUE';
  const columns = groups.map((g, i) => `${g} AS g${i}`);
  const keys = groups.map((_, i) => `g${i}`);
  const text = `SELECT json_build_array(${keys.join(', ')})::text AS k, n, v, selected
    FROM (SELECT ${[...columns, 'count(*)::int AS n', `${visible}::int AS v`, `${selected} AS selected`].join(', ')}
            FROM ${recordTable(shape.slug)} ${t}
           WHERE ${conditions.length ? conditions.join(' AND ') : 'TRUE'}
           ${keys.length ? `GROUP BY ${keys.map((_, i) => i + 1).join(', ')}` : ''}) a
    LIMIT ${MAX_GROUPS + 1}`;
  return { text, values: params.values };
}

/**
 * The answer of an aggregate from its full table: the suppression pattern is decided on every group
 * (so it never depends on `where`), and then only the selected groups are returned, in key order.
 */
export function protectedGroups(
  plan: AggregatePlan,
  rows: { k: string; n: number; v: number; selected: boolean }[],
): AggregateGroup[] {
  const keys = rows.map((row) => JSON.parse(row.k) as unknown[]);
  // The pattern is decided with the grouped names in one order, whatever order the caller wrote:
  // two orders of the same grouping must not get two patterns, which together would tell more.
  const canonical = plan.groupBy.map((name, j) => [name, j] as const).sort(([a], [b]) => (a < b ? -1 : 1));
  const cells: CountCell[] = rows.map((row, i) => ({
    key: canonical.map(([, j]) => JSON.stringify(keys[i][j])),
    count: row.n,
    hidden: row.n - row.v,
  }));
  const suppressed = protectedPattern(cells, plan.grant.minCellSize);
  // A table of three names or more is answered in full or not at all: even its keys would tell which
  // combinations are empty, so one that would need suppression is refused.
  if (plan.groupBy.length > 2 && suppressed.some(Boolean)) {
    throw new PolicyError(
      'BAD_USER_INPUT',
      'Grouped by three fields or more, some groups would be suppressed: group by fewer or coarser fields',
    );
  }
  const order = rows.map((_, i) => i).sort((a, b) => compareCells(cells[a].key, cells[b].key));
  const groups: AggregateGroup[] = [];
  for (const i of order) {
    if (!rows[i].selected) continue;
    const key: Record<string, unknown> = {};
    plan.groupBy.forEach((name, j) => (key[name] = keys[i][j]));
    groups.push({ key, count: suppressed[i] ? null : rows[i].n, suppressed: suppressed[i] });
  }
  return groups;
}

/** Key order: value by value, null last, numbers by value, text by code point. */
function compareCells(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] === 'null') return 1;
    if (b[i] === 'null') return -1;
    const x = JSON.parse(a[i]) as unknown;
    const y = JSON.parse(b[i]) as unknown;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}
