import { type ForcedSubject, type MongoAbility, createMongoAbility, subject as tag } from '@casl/ability';
import { isCanonicalUuid } from '@broker/core';
import { GrantAccess, PERSON_KEY } from './policy.types';
import type { ActiveAgreement } from './policy.types';

/**
 * The data plane's decisions in CASL: one ability per agreement version in force. Action `read`
 * (row pages; ROWS grants only) or `aggregate` (any grant); subject a dataset of the agreement,
 * named `dataset:<id>`; fields its released names, plus `personKey` where the grant has linkage;
 * condition the purpose, one of the version's purposes. What the SQL compiler does with a granted
 * name (row filter, released value, consent) stays in the compiler.
 *
 * Security: rules are built here only, from validated names: dataset ids that are UUIDs, purpose
 * codes of the purpose pattern, released names of the slug pattern or `personKey`. Subject types
 * are prefixed, so no dataset can be named like CASL's wildcard `all` or an Object.prototype key;
 * action names are fixed here, so `manage` never appears. Anything else makes no rule at all.
 * `@casl/ability/extra` (whose `rulesToFields` has an advisory) is never imported.
 */
export type DataAction = 'read' | 'aggregate';

/** The subject a data request is checked on: a dataset and the purpose it is asked for. */
export interface DataSubject {
  purpose: string;
}

type DataSubjects = string | (DataSubject & ForcedSubject<string>);

/** The ability of one agreement version in force. */
export type DataAbility = MongoAbility<[DataAction, DataSubjects]>;

const PURPOSE = /^[A-Z][A-Z0-9_]{2,63}$/;
const RELEASED_NAME = /^[a-z][a-z0-9_]{0,80}$/;
/** The field of a grant that releases no name: no request can ask for it (see isName). */
const NO_NAME = '\u0000';

/** A name a request may ask the ability about: a released name, or personKey. */
function isName(name: unknown): name is string {
  return typeof name === 'string' && (RELEASED_NAME.test(name) || name === PERSON_KEY);
}

/** The CASL subject type of a dataset; null for an id that is not a UUID (which gets no rule). */
export function datasetSubjectType(datasetId: string): string | null {
  return isCanonicalUuid(datasetId) ? `dataset:${datasetId}` : null;
}

/** A request's subject for the ability: the dataset, tagged, with the purpose asked for. */
export function dataSubject(
  datasetId: string,
  purpose: string,
): (DataSubject & ForcedSubject<string>) | null {
  const type = datasetSubjectType(datasetId);
  return type ? tag(type, { purpose: String(purpose) }) : null;
}

/** Compiles an agreement version in force into its ability (see {@link DataAction}). */
export function agreementAbility(agreement: Pick<ActiveAgreement, 'purposes' | 'grants'>): DataAbility {
  const purposes = agreement.purposes.filter((p) => typeof p === 'string' && PURPOSE.test(p));
  const rules: {
    action: DataAction | DataAction[];
    subject: string;
    fields: string[];
    conditions: object;
  }[] = [];
  if (purposes.length) {
    for (const [datasetId, grant] of agreement.grants) {
      const type = datasetSubjectType(datasetId);
      if (!type || grant.datasetId !== datasetId) continue;
      const fields = [...grant.released.keys()].filter((name) => RELEASED_NAME.test(name));
      if (grant.linkage) fields.push(PERSON_KEY);
      const action: DataAction[] =
        grant.access === GrantAccess.ROWS
          ? ['read', 'aggregate']
          : grant.access === GrantAccess.AGGREGATE_ONLY
            ? ['aggregate']
            : [];
      if (!action.length) continue;
      // An empty field list would mean "every field" to CASL: a grant releasing nothing gets a
      // field no request can name, so it answers whether the dataset is granted and nothing more.
      rules.push({
        action,
        subject: type,
        fields: fields.length ? fields : [NO_NAME],
        conditions: { purpose: { $in: purposes } },
      });
    }
  }
  return createMongoAbility<DataAbility>(rules);
}

/**
 * Whether an ability allows `action` on the dataset for the purpose and, when given, every one of
 * `names`. No names: whether it allows the action there at all.
 */
export function allows(
  ability: DataAbility,
  action: DataAction,
  datasetId: string,
  purpose: string,
  names: readonly string[] = [],
): boolean {
  const subject = dataSubject(datasetId, purpose);
  if (!subject || !ability.can(action, subject)) return false;
  return names.every((name) => isName(name) && ability.can(action, subject, name));
}

/** The first of `names` the ability does not allow for `action`, or null when it allows them all. */
export function firstRefused(
  ability: DataAbility,
  action: DataAction,
  datasetId: string,
  purpose: string,
  names: readonly unknown[],
): string | null {
  const subject = dataSubject(datasetId, purpose);
  for (const name of names) {
    if (!isName(name) || !subject || !ability.can(action, subject, name)) return String(name);
  }
  return null;
}
