import type { CompiledGrant, DatasetShape, RowFilter } from './policy.types';
import { type SqlParams, quoteIdent } from './sql-builder';
import { rowFilterSql } from './sql-compiler';

/** What of a grant decides its population: its row filter and whether it requires consent. */
export type PopulationGrant = Pick<CompiledGrant, 'requireConsent'> & { rowFilter: RowFilter | null };

/**
 * The rows of a grant's population for the given purposes, as SQL conditions on the record table
 * aliased `t`: the agreement's row filter, and, where the grant requires consent, the subject's latest
 * consent for one of the purposes (none recorded is no). The one home of this rule: row pages,
 * exports, aggregates, linked counts and the steward's preview all call it, so all count the same
 * people. A grant requiring consent on a dataset without a subject field releases nothing.
 */
export function populationConditions(
  grant: PopulationGrant,
  shape: Pick<DatasetShape, 'id' | 'fields' | 'subjectField'>,
  purposes: readonly string[],
  t: string,
  params: SqlParams,
): string[] {
  const conditions: string[] = [];
  if (grant.rowFilter) conditions.push(rowFilterSql(grant.rowFilter, shape as DatasetShape, t, params));
  if (grant.requireConsent) {
    if (!shape.subjectField || !purposes.length) return ['FALSE'];
    const purpose =
      purposes.length === 1
        ? `= ${params.add(purposes[0], 'text')}`
        : `= ANY (${params.add([...purposes], 'text[]')})`;
    conditions.push(
      `EXISTS (SELECT 1 FROM consent_current c WHERE c.dataset_id = ${params.add(shape.id, 'uuid')}
         AND c.purpose ${purpose}
         AND c.subject_id = ${t}.${quoteIdent(shape.subjectField)}::text AND c.granted)`,
    );
  }
  return conditions;
}

/** {@link populationConditions} as one condition: `TRUE` where nothing narrows the population. */
export function populationSql(
  grant: PopulationGrant,
  shape: Pick<DatasetShape, 'id' | 'fields' | 'subjectField'>,
  purposes: readonly string[],
  t: string,
  params: SqlParams,
): string {
  const conditions = populationConditions(grant, shape, purposes, t, params);
  return conditions.length ? conditions.join(' AND ') : 'TRUE';
}

/**
 * The raw fields an agreement row filter reads, each once: what the registry indexes when the
 * agreement comes into force, so that its population is found without reading every record.
 */
export function rowFilterFields(filter: RowFilter | null | undefined): string[] {
  const names = new Set<string>();
  const walk = (node: unknown, depth: number): void => {
    if (!node || typeof node !== 'object' || Array.isArray(node) || depth > 64) return;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === '$and' || key === '$or') {
        if (Array.isArray(value)) value.forEach((part) => walk(part, depth + 1));
      } else names.add(key);
    }
  };
  walk(filter, 0);
  return [...names];
}
