/**
 * The data plane's decisions on one root field, pure: which agreement answers, the bounds of a
 * request, whether every name it uses is released (by the agreement's CASL ability), and the rules
 * of aggregates. The data plane calls these and nothing else decides; each refusal carries the
 * contract's code and reason (DESIGN §4).
 */
import { shownName } from './compiled-grant';
import { filterWeight } from './data-where';
import type { PolicyError } from './policy-error';
import { type DataAbility, type DataAction, allows, firstRefused } from './data-ability';
import { releasedField, transformApplies } from './released-field';
import {
  type ActiveAgreement,
  type CompiledGrant,
  type DataWhere,
  type DatasetShape,
  FieldTransform,
  GrantAccess,
  PERSON_KEY,
} from './policy.types';

/** Why a request is refused, as `errors[].extensions.reason` says it (DESIGN §4). */
export type RefusalReason =
  | 'ROLE'
  | 'PURPOSE_NOT_GRANTED'
  | 'NO_AGREEMENT_IN_FORCE'
  | 'FIELD_NOT_RELEASED'
  | 'ROWS_NOT_GRANTED'
  | 'AGREEMENT_AMBIGUOUS'
  | 'LIMIT'
  | 'INVALID'
  | 'NOT_PARTY';

/** The contract's code of each reason. */
export const REFUSAL_CODES: Record<RefusalReason, 'FORBIDDEN' | 'BAD_USER_INPUT' | 'NOT_FOUND'> = {
  ROLE: 'FORBIDDEN',
  PURPOSE_NOT_GRANTED: 'FORBIDDEN',
  NO_AGREEMENT_IN_FORCE: 'FORBIDDEN',
  FIELD_NOT_RELEASED: 'FORBIDDEN',
  ROWS_NOT_GRANTED: 'FORBIDDEN',
  AGREEMENT_AMBIGUOUS: 'BAD_USER_INPUT',
  LIMIT: 'BAD_USER_INPUT',
  INVALID: 'BAD_USER_INPUT',
  NOT_PARTY: 'NOT_FOUND',
};

/** A refused part of a request: the contract's code and reason, a message, and what it names. */
export interface Refusal {
  code: 'FORBIDDEN' | 'BAD_USER_INPUT' | 'NOT_FOUND';
  reason: RefusalReason;
  message: string;
  responseKey?: string;
  /** FIELD_NOT_RELEASED: the name asked for, and the name the chosen agreement releases it as. */
  field?: string;
  releasedAs?: string;
  /** AGREEMENT_AMBIGUOUS: the agreements to choose from. */
  agreements?: string[];
}

/** A refusal of the given reason (its code follows from the reason). */
export function refusal(reason: RefusalReason, message: string, extra: Partial<Refusal> = {}): Refusal {
  return { code: REFUSAL_CODES[reason], reason, message, ...extra };
}

/** The refusal of a PolicyError thrown while a request was compiled. */
export function refusalOf(error: PolicyError): Refusal {
  if (error.code === 'FORBIDDEN') return refusal('FIELD_NOT_RELEASED', error.message);
  return refusal(error.limit ? 'LIMIT' : 'INVALID', error.message);
}

/** Rows per page: `first` is 1 to this. */
export const MAX_FIRST = 10_000;
/** Most names an aggregate may group by under an AGGREGATE_ONLY grant (docs/disclosure-control.md). */
export const MAX_GROUP_BY_AGGREGATE_ONLY = 4;
/** Under a ROWS grant the rows are released anyway; the cap only bounds the work. */
export const MAX_GROUP_BY_ROWS = 6;

/** An agreement version in force with its ability. */
export interface CompiledAgreement extends ActiveAgreement {
  ability: DataAbility;
}

/** The action a kind of root field needs. */
export function actionOf(kind: 'ROWS' | 'AGGREGATE'): DataAction {
  return kind === 'ROWS' ? 'read' : 'aggregate';
}

/**
 * The agreement that answers a root field on a dataset for a purpose: the one named, or the only
 * one whose ability allows aggregates there (every grant does); several without a name is ambiguous.
 */
export function chooseAgreement(
  active: readonly CompiledAgreement[],
  datasetId: string,
  purpose: string,
  named: string | null | undefined,
): { agreement: CompiledAgreement } | { refusal: Refusal } {
  const candidates = active.filter((a) => allows(a.ability, 'aggregate', datasetId, purpose));
  if (named != null) {
    const agreement = candidates.find((a) => a.id === named);
    if (agreement) return { agreement };
  } else if (candidates.length === 1) {
    return { agreement: candidates[0] };
  } else if (candidates.length > 1) {
    return {
      refusal: refusal(
        'AGREEMENT_AMBIGUOUS',
        'Several active agreements grant this dataset for this purpose: name one with agreement',
        { agreements: candidates.map((a) => a.id) },
      ),
    };
  }
  // Granted for another purpose (by the named agreement, if one is named), or not at all.
  const otherPurpose = active.some(
    (a) => (named == null || a.id === named) && a.grants.has(datasetId) && !a.purposes.includes(purpose),
  );
  return {
    refusal: otherPurpose
      ? refusal('PURPOSE_NOT_GRANTED', 'No active agreement grants this dataset for this purpose')
      : named != null
        ? refusal(
            'NO_AGREEMENT_IN_FORCE',
            'No active agreement of your agency with that id grants this dataset for this purpose',
          )
        : refusal('NO_AGREEMENT_IN_FORCE', 'No active agreement grants this dataset for this purpose'),
  };
}

/** The names a root field uses, by use. */
export interface NamesUsed {
  fields: readonly string[];
  whereFields: readonly string[];
  orderFields: readonly string[];
  groupBy: readonly string[];
}

/**
 * Whether the chosen agreement's ability allows the root field: row pages need `read` (ROWS), and
 * every name read, filtered, ordered or grouped by must be a field of the ability. A refused name
 * says what the agreement releases the same source field as, when it does (`releasedAs`).
 */
export function checkNames(
  agreement: CompiledAgreement,
  shape: DatasetShape,
  purpose: string,
  kind: 'ROWS' | 'AGGREGATE',
  names: NamesUsed,
): Refusal | null {
  const action = actionOf(kind);
  if (!allows(agreement.ability, action, shape.id, purpose)) {
    return refusal('ROWS_NOT_GRANTED', 'The chosen agreement releases this dataset for aggregates only');
  }
  if (kind === 'ROWS' && names.groupBy.length) {
    return refusal('INVALID', 'groupBy applies to aggregates only');
  }
  const uses: [string, readonly string[]][] = [
    ['field', names.fields],
    ['filter', names.whereFields],
    ['ordering', names.orderFields],
    ['groupBy', names.groupBy],
  ];
  for (const [use, list] of uses) {
    const refused = firstRefused(agreement.ability, action, shape.id, purpose, list);
    if (refused === null) continue;
    const grant = agreement.grants.get(shape.id);
    const releasedAs = grant ? releasedAsOf(grant, shape, refused) : undefined;
    return refusal(
      'FIELD_NOT_RELEASED',
      `The chosen agreement does not release ${shownName(refused)} (${use})${
        releasedAs ? `; it releases it as ${shownName(releasedAs)}` : ''
      }`,
      { field: refused.slice(0, 64), ...(releasedAs ? { releasedAs } : {}) },
    );
  }
  return null;
}

/**
 * The name under which a grant releases the source field of `name` (a raw field name, or another
 * released name of the same field), if it releases that field at all.
 */
export function releasedAsOf(grant: CompiledGrant, shape: DatasetShape, name: string): string | undefined {
  const sources = new Set<string>();
  for (const field of shape.fields) {
    for (const transform of Object.values(FieldTransform)) {
      if (transformApplies(field.type, transform) && releasedField(field, transform).name === name) {
        sources.add(field.name);
      }
    }
  }
  for (const released of grant.released.values()) {
    if (sources.has(released.source)) return released.name;
  }
  return undefined;
}

/** The arguments that bound a root field's work. */
export interface Bounds {
  first?: number | null;
  groupBy?: readonly string[] | null;
}

/** Whether `first` is a page size the data plane serves: an integer from 1 to {@link MAX_FIRST}. */
export function isPageSize(first: unknown): first is number {
  return Number.isInteger(first) && (first as number) >= 1 && (first as number) <= MAX_FIRST;
}

/**
 * The bounds of a root field: `first` from 1 to {@link MAX_FIRST}; a groupBy naming each field once
 * and no more fields than the grant's access allows (each name doubles the tables whose patterns
 * disclosure control checks).
 */
export function checkBounds(kind: 'ROWS' | 'AGGREGATE', access: GrantAccess, args: Bounds): Refusal | null {
  if (kind === 'ROWS') {
    const first = args.first ?? 100;
    if (!isPageSize(first)) {
      return refusal('INVALID', `first must be between 1 and ${MAX_FIRST}`);
    }
    return null;
  }
  const groupBy = args.groupBy ?? [];
  if (new Set(groupBy).size !== groupBy.length) {
    return refusal('INVALID', 'groupBy names a field more than once');
  }
  const most = access === GrantAccess.ROWS ? MAX_GROUP_BY_ROWS : MAX_GROUP_BY_AGGREGATE_ONLY;
  if (groupBy.length > most) {
    return refusal(
      'LIMIT',
      'The aggregate groups by more fields than this agreement allows (see docs/disclosure-control.md)',
    );
  }
  return null;
}

/** How an aggregate counts: records, or distinct linked persons (DESIGN §4.2 `CountUnit`). */
export type CountUnit = 'RECORDS' | 'PERSONS';

/** Default of `AGGREGATE_DAILY_BUDGET`: perturbed aggregates per analyst, agreement and UTC day. */
export const DEFAULT_AGGREGATE_DAILY_BUDGET = 200;

/** Days a linked window may span either way: a century, which bounds the statement's arithmetic. */
export const MAX_WINDOW_DAYS = 36_600;

/** The `linked` argument of an aggregate, for one other dataset, as graphql-js coerces it. */
export interface LinkedArgs {
  exists?: boolean | null;
  agreement?: string | null;
  where?: unknown;
  on?: string | null;
  after?: string | null;
  minDays?: number | null;
  maxDays?: number | null;
}

/** Counting persons needs the linkage pseudonym: the grant must release linkage. */
export function checkUnit(grant: Pick<CompiledGrant, 'linkage'>, unit: CountUnit): Refusal | null {
  if (unit === 'PERSONS' && !grant.linkage) {
    return refusal('FIELD_NOT_RELEASED', 'Counting persons needs a grant with linkage', {
      field: PERSON_KEY,
    });
  }
  return null;
}

/**
 * The rules of a linked count (DESIGN §4.2): both grants release linkage; a window names a DATE or
 * DATETIME released RAW on each side (`on` by the other dataset's grant, `after` by this one's), both
 * or neither, with `minDays <= maxDays` within a century.
 */
export function checkLinked(
  grant: Pick<CompiledGrant, 'linkage' | 'released'>,
  other: Pick<CompiledGrant, 'linkage' | 'released'>,
  args: LinkedArgs,
): Refusal | null {
  if (!grant.linkage || !other.linkage) {
    return refusal('FIELD_NOT_RELEASED', 'A linked count needs grants with linkage on both datasets', {
      field: PERSON_KEY,
    });
  }
  const on = args.on ?? null;
  const after = args.after ?? null;
  if ((on === null) !== (after === null)) {
    return refusal('INVALID', 'A window needs both on and after');
  }
  if (on !== null && after !== null) {
    for (const [name, source] of [
      [on, other],
      [after, grant],
    ] as const) {
      const released = source.released.get(name);
      if (!released || released.transform !== FieldTransform.RAW || !DATE_TYPES.has(released.type)) {
        return refusal('INVALID', `${shownName(name)} is not a date released as is: a window needs one`);
      }
    }
  } else if (args.maxDays != null || (args.minDays ?? 0) !== 0) {
    return refusal('INVALID', 'minDays and maxDays need a window: name on and after');
  }
  const min = args.minDays ?? 0;
  const max = args.maxDays ?? null;
  if (!Number.isInteger(min) || Math.abs(min) > MAX_WINDOW_DAYS) {
    return refusal('INVALID', `minDays must be an integer within ${MAX_WINDOW_DAYS} days`);
  }
  if (max !== null && (!Number.isInteger(max) || Math.abs(max) > MAX_WINDOW_DAYS || max < min)) {
    return refusal('INVALID', `maxDays must be an integer from minDays to ${MAX_WINDOW_DAYS}`);
  }
  return null;
}

const DATE_TYPES = new Set(['Date', 'DateTime']);

/**
 * Whether an aggregate's counts are exact (DESIGN §4.2): the caller may read, under the chosen
 * agreements, the rows of every dataset the answer counts (ROWS grants, with linkage for `linked`
 * and `PERSONS`). Otherwise counts are perturbed and small groups left out.
 */
export function aggregateIsExact(
  grant: Pick<CompiledGrant, 'access' | 'linkage'>,
  unit: CountUnit,
  linked: Pick<CompiledGrant, 'access' | 'linkage'> | null,
): boolean {
  if (grant.access !== GrantAccess.ROWS) return false;
  if ((unit === 'PERSONS' || linked) && !grant.linkage) return false;
  return !linked || (linked.access === GrantAccess.ROWS && linked.linkage);
}

/**
 * The daily budgets of perturbed aggregates under an agreement: each analyst's own
 * (`AGGREGATE_DAILY_BUDGET`), and the one all the recipient's analysts share
 * (`AGGREGATE_AGREEMENT_DAILY_BUDGET`).
 */
export type AggregateBudget = 'ANALYST' | 'AGREEMENT';

/**
 * The refusal of a request past one of the daily budgets of an agreement (which one the data plane
 * finds as it spends them, atomically: DataPlaneRecorder.spendBudget): `LIMIT`, saying which budget,
 * never where it stands.
 */
export function budgetSpent(budget: AggregateBudget): Refusal {
  return refusal(
    'LIMIT',
    budget === 'ANALYST'
      ? 'Your own budget of aggregates under this agreement is spent for today: try again tomorrow'
      : 'The budget of aggregates this agreement shares among all its analysts is spent for today: try again tomorrow',
  );
}

/**
 * The most conditions, and the most HMACs (its conditions on HASH names and the HASH names it is
 * grouped by), that a perturbed aggregate's filter may hold (each side of a linked count). A filter's conditions are checked on the records its cheapest
 * ones leave: a heavy filter (hundreds of HMACs) beside `zip: {eq: …}` made each record of a group
 * that the answer leaves out cost milliseconds, and the answer's time told a group of 10 from none in
 * about 20 requests, well within a day's budget. Bounded, a record costs a few microseconds at most,
 * no more than it costs to count (docs/disclosure-control.md, "Timing").
 */
export const MAX_PERTURBED_FILTER_CONDITIONS = 100;
export const MAX_PERTURBED_FILTER_HASHES = 2;

/**
 * {@link MAX_PERTURBED_FILTER_CONDITIONS} and its HASH bound: past either, `LIMIT`, without saying
 * where. The HASH bound is of the HMACs a record the filter keeps may cost: the filter's conditions on
 * HASH names, and the HASH names of `groupBy` (the record's group key is computed too, on every record
 * the filter keeps, those of a group the answer leaves out included).
 */
export function checkPerturbedFilter(
  where: DataWhere | null | undefined,
  grant: CompiledGrant,
  groupBy: readonly string[] = [],
): Refusal | null {
  const { conditions, hashed } = filterWeight(where, grant);
  const grouped = groupBy.filter(
    (name) => grant.released.get(name)?.transform === FieldTransform.HASH,
  ).length;
  if (conditions <= MAX_PERTURBED_FILTER_CONDITIONS && hashed + grouped <= MAX_PERTURBED_FILTER_HASHES) {
    return null;
  }
  return refusal('LIMIT', 'The filter and grouping are too heavy for a perturbed count');
}
