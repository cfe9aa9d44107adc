import { createHash } from 'node:crypto';
import { canonicalJson } from './agreement-content';
import type { ReleasedNameOptions } from './data-where';
import type { CompiledGrant, DataWhere, DatasetShape, RowFilter } from './policy.types';
import { type SqlParams, quoteIdent } from './sql-builder';
import { type HmacKeyParam, rowFilterPredicate, rowFilterSql, whereParts, whereSql } from './sql-compiler';

/**
 * The population a lookup table of a grant with `rowFilter` files (a HASH name's, the registry's
 * `hash_key_scope.population`; personKey's, linkage's `person_key_scope.population`): a digest of
 * the filter's canonical JSON, or '' for a grant without one (every record). Consent is not part of
 * it: it changes record by record.
 */
export function populationOf(rowFilter: RowFilter | null | undefined): string {
  if (!rowFilter) return '';
  // A grant's filter is the policy cache's own object, never changed: digested once, not per request.
  let population = populations.get(rowFilter);
  if (population === undefined) {
    population = createHash('sha256').update(canonicalJson(rowFilter)).digest('hex').slice(0, 32);
    populations.set(rowFilter, population);
  }
  return population;
}
const populations = new WeakMap<RowFilter, string>();

/**
 * The population of a grant with `rowFilter` as a condition on the record `alias` (the row filter
 * written in, see rowFilterPredicate), or null for every record: what a lookup table's build and
 * upkeep, and a population's indexes, read it by. Throws PolicyError when the filter no longer fits
 * the dataset.
 */
export function populationPredicate(
  rowFilter: RowFilter | null | undefined,
  shape: DatasetShape,
  alias: string,
): string | null {
  return rowFilter ? rowFilterPredicate(rowFilter, shape, alias) : null;
}

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
  /** SQL that must hold of a consenting subject's record too, checked only once its consent is. */
  afterConsent?: () => string,
): string[] {
  const conditions: string[] = [];
  if (grant.rowFilter) {
    conditions.push(rowFilterSql(grant.rowFilter, shape as DatasetShape, t, params.rowFilterParams()));
  }
  if (grant.requireConsent) {
    if (!shape.subjectField || !purposes.length) return ['FALSE'];
    // What the population's indexes are partial on (see consentPredicate): a record whose subject does
    // not consent is in none of them, so a walk of one never fetches it. The consent in force (below)
    // is what decides the answer.
    conditions.push(consentPredicate(purposes, t));
    const purpose =
      purposes.length === 1
        ? `= ${params.add(purposes[0], 'text')}`
        : `= ANY (${params.add([...purposes], 'text[]')})`;
    // A condition naming the consent's row (c.granted) joins on it: PostgreSQL checks it only for a
    // record whose consent it found, never in the scan of the records before it.
    const then = afterConsent ? ` AND (CASE WHEN c.granted THEN ${afterConsent()} END)` : '';
    conditions.push(
      `EXISTS (SELECT 1 FROM consent_current c WHERE c.dataset_id = ${params.add(shape.id, 'uuid')}
         AND c.purpose ${purpose}
         AND c.subject_id = ${t}.${quoteIdent(shape.subjectField)}::text AND c.granted${then})`,
    );
  }
  return conditions;
}

/**
 * The condition that a record's subject consents to one of `purposes`, on the consent the database
 * keeps on each record of a dataset with a subject field (`_consent`, the purposes in force, kept by
 * triggers as consent and records change: migration record-consent), the record table aliased
 * `alias`, the purposes written in: the one text of it, for statements and for the predicate of the
 * indexes of a population that requires consent (see populationPredicates), so that PostgreSQL, proving
 * the one from the other, walks only consenting subjects' records.
 */
export function consentPredicate(purposes: readonly string[], alias: string): string {
  if (!purposes.length) throw new Error('consent is to one purpose at least');
  // `_consent` is `,A,B,` (the codes, which hold no comma, in order): a purpose is `,P,` within it.
  const one = (purpose: string) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(purpose))
      throw new Error('a purpose code is upper-case letters, digits, _');
    return `strpos(${quoteIdent(alias)}."_consent", ',${purpose},') > 0`;
  };
  return purposes.length === 1 ? one(purposes[0]) : `(${purposes.map(one).join(' OR ')})`;
}

/**
 * The predicates of the indexes of a grant's populations as its statements write them, on the
 * record table named `table`: its row filter's (`rowFilter`, written in; null without one) and,
 * where the grant requires consent, that filter and each purpose's consent (see consentPredicate):
 * what a page under the grant for that purpose walks.
 */
export function populationPredicates(
  rowFilter: string | null,
  grant: Pick<CompiledGrant, 'requireConsent'>,
  shape: Pick<DatasetShape, 'subjectField'>,
  purposes: readonly string[],
  table: string,
): string[] {
  const predicates = rowFilter === null ? [] : [rowFilter];
  if (!grant.requireConsent || !shape.subjectField) return predicates;
  for (const purpose of purposes) {
    const consent = consentPredicate([purpose], table);
    predicates.push(rowFilter === null ? consent : `${rowFilter} AND ${consent}`);
  }
  return predicates;
}

/**
 * The population's conditions (see {@link populationConditions}) and, where given, the caller's
 * filter on released names: the records a page, an export or an aggregate reads. Where the grant
 * requires consent, the filter is checked only on records whose subject's consent is in force (after
 * the consent is found, in its join), so that a record of a subject who withdrew, or never gave,
 * consent costs the filter nothing, however heavy the filter: its time would otherwise tell that the
 * record exists (docs/disclosure-control.md, "Timing"). Only the few cheap conditions on raw columns
 * that the filter implies (see whereParts) are checked on every record, for the indexes that serve
 * them. Without consent the population is the row filter, a scan's condition like the filter's, which
 * PostgreSQL checks in order of cost: the filter's heavy parts after it.
 */
export function filteredPopulation(
  grant: CompiledGrant,
  shape: DatasetShape,
  purposes: readonly string[],
  t: string,
  params: SqlParams,
  filter: { where: DataWhere; hmacKey: HmacKeyParam; options: ReleasedNameOptions } | null,
): string[] {
  if (!filter) return populationConditions(grant, shape, purposes, t, params);
  const { where, hmacKey, options } = filter;
  // Without consent to check (none asked, or none can be: FALSE), the filter is one more condition.
  if (!grant.requireConsent || !shape.subjectField || !purposes.length) {
    const conditions = populationConditions(grant, shape, purposes, t, params);
    conditions.push(whereSql(where, grant, shape, t, params, hmacKey, options));
    return conditions;
  }
  const parts = whereParts(where, grant, shape, t, params, hmacKey, options);
  const conditions = populationConditions(grant, shape, purposes, t, params, () => parts.condition);
  return conditions.length === 1 && conditions[0] === 'FALSE'
    ? conditions
    : [...conditions, ...parts.indexable];
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
