import {
  type CompiledGrant,
  type CompiledAgreement,
  MAX_GROUPS,
  type ReadableGrant,
  type DataWhere,
  GrantAccess,
  PolicyError,
  SqlParams,
  releasedJsonExpression,
  populationConditions,
  whereSql,
} from '@broker/policy';
import { type DatasetShapeRecord, recordTable } from '@broker/registry';

/** What an aggregate counts, authorised: see `authorise` in the data-plane service. */
export interface AggregatePlan {
  shape: DatasetShapeRecord;
  agreement: CompiledAgreement;
  grant: CompiledGrant;
  purpose: string;
  groupBy: string[];
  where: DataWhere | null;
  /** Every ROWS grant of the caller's active agreements over this dataset, any purpose. */
  readable: ReadableGrant[];
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
