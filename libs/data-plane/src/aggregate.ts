import {
  type CompiledGrant,
  type CompiledAgreement,
  type CountUnit,
  MAX_GROUPS,
  type DataWhere,
  PolicyError,
  SqlParams,
  cellKeySql,
  listedSql,
  personCellKeySql,
  filteredPopulation,
  quoteIdent,
  recordKeySql,
  releasedJsonExpression,
  windowSql,
} from '@broker/policy';
import { type DatasetShapeRecord, type HashTableWanted, recordTable } from '@broker/registry';
import { type HashLookups, hashOptions } from './page-sql';

/** The other side of a linked count, authorised under its own chosen agreement. */
export interface LinkedPlan {
  shape: DatasetShapeRecord;
  agreement: CompiledAgreement;
  grant: CompiledGrant;
  exists: boolean;
  where: DataWhere | null;
  /** The window: `on` of the other dataset, `after` of this one, released names; null for none. */
  on: string | null;
  after: string | null;
  minDays: number;
  maxDays: number | null;
}

/** What an aggregate counts, authorised: see `authorise` in the data plane. */
export interface AggregatePlan {
  shape: DatasetShapeRecord;
  agreement: CompiledAgreement;
  grant: CompiledGrant;
  purpose: string;
  groupBy: string[];
  where: DataWhere | null;
  unit: CountUnit;
  linked: LinkedPlan | null;
  /** Whether the counts are exact (the caller reads the rows); else perturbed, small groups left out. */
  exact: boolean;
  /** The smallest group a perturbed answer lists. */
  minCellSize: number;
}

/** The person of a record in the linkage run in force; none while the record is not linked. */
function personJoin(join: 'JOIN' | 'LEFT JOIN', alias: string, datasetParam: string, keySql: string) {
  return `${join} linkage_person ${alias} ON ${alias}.run_id = (SELECT ls.current_run_id FROM linkage_state ls WHERE ls.id = 1)
     AND ${alias}.dataset_id = ${datasetParam} AND ${alias}.record_key = ${keySql}`;
}

/**
 * The one statement of an aggregate: the counts of the population by the released values of
 * `groupBy` (the caller's `where` applied in SQL), each group with its cell key (cell-key.ts).
 * With `linked`, a record (or person) counts when its person has (or has not) a record of the
 * other dataset in that dataset's own population (row filter, consent) matching the other `where`
 * and the window: a semi (or anti) join on the linkage run in force, in the same statement.
 * Both populations come from `filteredPopulation` (with the filters), as row pages do.
 */
export function aggregateSql(
  plan: AggregatePlan,
  /** The key of perturbations (perturbationKey): a perturbed answer's statement lists by it. */
  perturbation: Buffer,
  hashes?: HashLookups,
): { text: string; values: unknown[]; hashed: HashTableWanted[] } {
  const params = new SqlParams();
  const { shape, grant } = plan;
  const hmacKey = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  // A filter on a HASH name finds its records in the agreement's lookup table, as a page's does.
  const lookups = hashOptions(plan, params, t, hmacKey, hashes);
  const filter = plan.where ? { where: plan.where, hmacKey, options: lookups } : null;
  const conditions = filteredPopulation(grant, shape, [plan.purpose], t, params, filter);
  const groups = plan.groupBy.map((name) => {
    const released = grant.released.get(name);
    if (!released) throw new PolicyError('FORBIDDEN', 'Not granted');
    return releasedJsonExpression(released, shape, t, hmacKey);
  });
  const persons = plan.unit === 'PERSONS';
  const usesPerson = persons || plan.linked !== null;
  const keyText = `${t}.${quoteIdent(shape.keyField)}::text`;
  const joins = usesPerson
    ? personJoin(persons ? 'JOIN' : 'LEFT JOIN', 'pa', params.add(shape.id, 'uuid'), keyText)
    : '';

  let match: string | null = null;
  // The other dataset's HASH filters find theirs in its agreement's tables.
  const hashed: HashTableWanted[] = [];
  if (plan.linked) {
    const other = plan.linked;
    const o = 'o';
    const otherKey = params.lazy(other.agreement.hmacKey, 'bytea');
    const otherLookups = hashOptions(other, params, o, otherKey, hashes);
    const otherFilter = other.where ? { where: other.where, hmacKey: otherKey, options: otherLookups } : null;
    const inner = filteredPopulation(other.grant, other.shape, [plan.purpose], o, params, otherFilter);
    hashed.push(...otherLookups.hashed());
    if (other.on && other.after) {
      inner.push(
        windowSql(
          grant.released.get(other.after)!,
          t,
          other.grant.released.get(other.on)!,
          o,
          other.minDays,
          other.maxDays,
          params,
        ),
      );
    }
    const otherDataset = params.add(other.shape.id, 'uuid');
    match = `EXISTS (SELECT 1 FROM linkage_person pb
        JOIN ${recordTable(other.shape.slug)} ${o} ON pb.record_key = ${o}.${quoteIdent(other.shape.keyField)}::text
       WHERE pb.run_id = pa.run_id AND pb.dataset_id = ${otherDataset} AND pb.person_id = pa.person_id
         ${inner.map((c) => `AND ${c}`).join(' ')})`;
  }
  const where = (extra: string | null) => {
    const all = extra ? [...conditions, extra] : conditions;
    return all.length ? all.join(' AND ') : 'TRUE';
  };
  const columns = groups.map((g, i) => `${g} AS g${i}`);
  const keys = groups.map((_, i) => `g${i}`);
  const groupByKeys = keys.length ? `GROUP BY ${keys.join(', ')}` : '';
  const from = `FROM ${recordTable(shape.slug)} ${t} ${joins}`;
  let inner: string;
  let cellKey: string;
  if (!persons) {
    const filter = match === null ? null : plan.linked!.exists ? match : `NOT ${match}`;
    inner = `SELECT ${[...columns, `${recordKeySql(t)} AS rk`].join(', ')} ${from} WHERE ${where(filter)}`;
    cellKey = cellKeySql('u.rk');
  } else {
    // Persons: distinct (group, person) pairs. Without a match, a person of the group is counted
    // once; `exists: false` takes the pairs of the group less those with a matching record, so it is
    // the exact complement of `exists: true` within each group.
    const pairs = (extra: string | null) =>
      `SELECT DISTINCT ${[...columns, 'pa.person_id'].join(', ')} ${from} WHERE ${where(extra)}`;
    inner =
      match === null
        ? pairs(null)
        : plan.linked!.exists
          ? pairs(match)
          : `${pairs(null)} EXCEPT ${pairs(match)}`;
    cellKey = cellKeySql(personCellKeySql('u.person_id'));
  }
  const counted = `SELECT json_build_array(${keys.join(', ')})::text AS k, count(*)::int AS n, count(*)::int AS v,
      TRUE AS selected, ${cellKey} AS ck
    FROM (${inner}) u ${groupByKeys}`;
  // A perturbed answer reads only the groups it lists (listedSql: at least the minimum, before and
  // after perturbation), so that no limit on the groups read (MAX_GROUPS) counts a group the answer
  // would leave out, and a refusal cannot tell that one exists. An exact answer reads them all, for
  // its suppression pattern.
  let text: string;
  if (plan.exact) text = `${counted} LIMIT ${MAX_GROUPS + 1}`;
  else {
    const m = params.add(plan.minCellSize, 'integer');
    const listed = listedSql('g.n', 'g.ck', m, params.add(perturbation, 'bytea'));
    text = `SELECT g.k, g.n, g.v, g.selected, g.ck FROM (${counted} HAVING count(*) >= ${m}) g
      WHERE ${listed} LIMIT ${MAX_GROUPS + 1}`;
  }
  return { text, values: params.values, hashed: [...lookups.hashed(), ...hashed] };
}
