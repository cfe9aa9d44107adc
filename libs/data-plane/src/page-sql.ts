import { personKeySql } from '@broker/linkage';
import {
  PolicyError,
  type ReleasedNameOptions,
  SqlParams,
  pageOrder,
  populationConditions,
  projection,
  quoteIdent,
  whereSql,
} from '@broker/policy';
import { recordTable } from '@broker/registry';
import type { Plan } from './plan';

/**
 * The one statement of a page: released values built as JSON by PostgreSQL, plus the count for
 * paging. Every piece of policy comes from libs/policy: the population (row filter and consent),
 * the caller's filter and ordering on released values, and the projection of released names.
 */
export function pageSql(
  plan: Plan,
  recordReleases = false,
  recipientAgencyId = '',
): { text: string; values: unknown[] } {
  const params = new SqlParams();
  const { shape, grant } = plan;
  // Only HASH values need the agreement's key: it becomes a parameter the first time one uses it.
  const hmacKey = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  const options = personKeyOptions(plan, params, recipientAgencyId, t);
  const conditions = populationConditions(grant, shape, [plan.purpose], t, params);
  if (plan.where) conditions.push(whereSql(plan.where, grant, shape, t, params, hmacKey, options));
  // Ties break on the random row id, never on a value the agreement does not release (pageOrder).
  const ordering = pageOrder(plan.orderBy, grant, shape, t, hmacKey, options);
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
  const json = columns.map((c) => `'${c.key}', ${c.expression}`).join(', ');
  const floats = columns.filter((c) => c.type === 'Float').map((c) => c.expression);
  const first = params.add(plan.first, 'bigint');
  const limit = params.add(plan.first + 1, 'bigint');
  // A float that JSON has no number for (NaN, ±Infinity), flagged: GraphQL's Float refuses it.
  const odd = floats.length
    ? `, (${floats.map((f) => `${f} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)`).join(' OR ')}) AS odd`
    : '';
  const unrepresentable = floats.length
    ? `coalesce(bool_or(s.odd) FILTER (WHERE s.ord <= ${first}), false)`
    : 'false';
  // The page is cut first (LIMIT right above the ORDER BY: with an index on the ordering, PostgreSQL
  // reads only the page's rows from the cursor on), and only its rows are then numbered, in the same
  // order (total: it ends on the key), and built as JSON. The last row's position becomes the cursor.
  // Which records leave, by random row id, for subject access reports.
  const rids = recordReleases
    ? `, coalesce(array_agg(s.rid ORDER BY s.ord) FILTER (WHERE s.ord <= ${first}), '{}')::text AS rids`
    : '';
  const rid = recordReleases ? `, ${t}."_rid" AS rid` : '';
  const where = (extra: string[]) => [...conditions, ...extra].join(' AND ') || 'TRUE';
  const table = `${recordTable(shape.slug)} ${t}`;
  // Several branches (an ascending order on a value that may be null, mixed directions): each reads
  // at most the page from its own index range, and the page is the first rows of their union.
  const rows =
    branches.length > 1
      ? `SELECT ${t}.* FROM (${branches
          .map((b) => `(SELECT ${t}.* FROM ${table} WHERE ${where([b])} ORDER BY ${order} LIMIT ${limit})`)
          .join(' UNION ALL ')}) ${t} ORDER BY ${order} LIMIT ${limit}`
      : `SELECT ${t}.* FROM ${table} WHERE ${where(branches)} ORDER BY ${order} LIMIT ${limit}`;
  const text = `SELECT count(*)::int AS n,
      coalesce(json_agg(s.j ORDER BY s.ord) FILTER (WHERE s.ord <= ${first}), '[]')::text AS nodes,
      ${unrepresentable} AS unrepresentable${rids},
      (array_agg(s.pos ORDER BY s.ord DESC) FILTER (WHERE s.ord <= ${first}))[1]::text AS position
    FROM (SELECT json_build_object(${json}) AS j${odd}${rid}, ${ordering.position} AS pos,
                 row_number() OVER (ORDER BY ${order}) AS ord
            FROM (${rows}) ${t}) s`;
  return { text, values: params.values };
}

/**
 * personKey's SQL, where the grant has linkage: its parameters are added the first time it is used,
 * and it needs the recipient agency (the pseudonym is scoped to recipient and purpose).
 */
export function personKeyOptions(
  plan: Pick<Plan, 'grant' | 'shape' | 'purpose'>,
  params: SqlParams,
  recipientAgencyId: string,
  t: string,
): ReleasedNameOptions {
  if (!plan.grant.linkage) return {};
  let personKey: string | undefined;
  return {
    get personKey() {
      if (!recipientAgencyId) throw new PolicyError('FORBIDDEN', 'Not granted');
      return (personKey ??= personKeySql(
        params,
        plan.shape.id,
        recipientAgencyId,
        plan.purpose,
        `${t}.${quoteIdent(plan.shape.keyField)}::text`,
      ));
    },
  };
}
