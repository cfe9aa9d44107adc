/**
 * Grants compiled against their datasets, and the decision on a data request: which released
 * names a request may use under the chosen grant. Deny by default: anything unexpected is refused.
 */
import { MIN_CELL_SIZE_RANGE } from './agreement-content';
import { type DataAbility, agreementAbility } from './data-ability';
import { PolicyError } from './policy-error';
import {
  type CompiledGrant,
  type DatasetShape,
  GrantAccess,
  type GrantContent,
  PERSON_KEY,
  type ReleasedField,
} from './policy.types';
import { releasedField, transformApplies } from './released-field';
import { parseRowFilter } from './row-filter';

const ACCESSES: ReadonlySet<string> = new Set(Object.values(GrantAccess));

/** Refuses a grant whose stored content does not fit its dataset: no data rather than a guess. */
function mismatch(what: string): PolicyError {
  return new PolicyError('FORBIDDEN', `The agreement's grant does not match the dataset (${what})`);
}

/** Compiles one grant of an agreement version against its dataset: released fields by released name. */
export function compileGrant(grant: GrantContent, dataset: DatasetShape): CompiledGrant {
  if (grant.datasetId !== dataset.id) throw mismatch('another dataset');
  if (typeof grant.access !== 'string' || !ACCESSES.has(grant.access)) throw mismatch('access');
  const [min, max] = MIN_CELL_SIZE_RANGE;
  if (!Number.isInteger(grant.minCellSize) || grant.minCellSize < min || grant.minCellSize > max) {
    throw mismatch('minimum cell size');
  }
  const fields = new Map(dataset.fields.map((f) => [f.name, f]));
  const released = new Map<string, ReleasedField>();
  const granted = new Set<string>();
  for (const fieldGrant of grant.fields) {
    const field = fields.get(fieldGrant.name);
    if (!field || granted.has(field.name) || !transformApplies(field.type, fieldGrant.transform)) {
      throw mismatch('fields');
    }
    granted.add(field.name);
    const rf = releasedField(field, fieldGrant.transform);
    // The registry refuses fields that another field could be released as; checked again here, as
    // a collision would let one name release two different values.
    if (released.has(rf.name) || rf.name === PERSON_KEY) throw mismatch('released names');
    released.set(rf.name, rf);
  }
  let rowFilter = null;
  if (grant.rowFilter !== null) {
    const parsed = parseRowFilter(grant.rowFilter, dataset);
    if (!parsed.ok) throw mismatch('row filter');
    rowFilter = parsed.filter;
  }
  return Object.freeze({
    datasetId: dataset.id,
    access: grant.access,
    released,
    rowFilter,
    requireConsent: grant.requireConsent === true,
    minCellSize: grant.minCellSize,
    linkage: grant.linkage === true,
  });
}

/**
 * Compiles an agreement version in force: its grants against their datasets (a grant whose dataset
 * is not among `shapes` is left out), by dataset id, and its ability (see agreementAbility). Throws
 * PolicyError when a grant does not fit its dataset. The one home of the compiled policy: the data
 * plane answers under it, and the personKey lookup tables kept are those it lets a statement read.
 */
export function compileAgreement<A extends { purposes: string[] }>(
  agreement: A,
  grants: readonly GrantContent[],
  shapes: ReadonlyMap<string, DatasetShape>,
): A & { grants: Map<string, CompiledGrant>; ability: DataAbility } {
  const compiled = {
    ...agreement,
    grants: new Map(
      grants
        .filter((g) => shapes.has(g.datasetId))
        .map((g) => [g.datasetId, compileGrant(g, shapes.get(g.datasetId)!)] as const),
    ),
  };
  // The version's ability is compiled once, with its grants.
  return { ...compiled, ability: agreementAbility(compiled) };
}

/** A name the caller wrote, cut short for a message. */
export function shownName(name: unknown): string {
  const text = typeof name === 'string' ? name : String(name);
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}
