import {
  AbilityBuilder,
  type ForcedSubject,
  type MongoAbility,
  createMongoAbility,
  subject as tag,
} from '@casl/ability';
import { BrokerError, ErrorCode, isUuid } from '@broker/core';
import type { Principal } from './request-context';
import { Role } from './role.enum';

/**
 * What a principal may do on the control plane, on which objects. One ability per (role, agency),
 * built by {@link controlAbility} alone: `@Allow` on each operation is the coarse gate (deny by
 * default, per role); this ability is the finer one, on the object itself (its agency, its parties).
 *
 * Security: CASL's `rulesToFields` of `@casl/ability/extra` has an advisory in every published
 * version; that entry point is never imported (a lint rule), and conditions are built here only, from
 * the role enum and agency ids that are checked to be UUIDs (see docs/architecture.md, "CASL").
 */
export type ControlAction =
  | 'read'
  | 'create'
  | 'update'
  | 'propose'
  | 'amend'
  | 'approve'
  | 'decline'
  | 'attest'
  | 'revoke'
  | 'preview'
  | 'ingest'
  | 'recordConsent'
  | 'reportSubjectAccess'
  | 'deactivate'
  | 'start'
  /**
   * Not an operation: the principal has standing in the object (its agency is provider, recipient or
   * owner; the oversight board for every agreement and user). A refusal on an object without
   * standing is NOT_FOUND, as for a missing one.
   */
  | 'party';

/** An agreement as the ability sees it: its two parties. */
export interface AgreementObject {
  providerAgencyId: string;
  recipientAgencyId: string;
  /** Whether the version an approval or decline is for needs oversight (DESIGN §4.1). */
  oversightRequired?: boolean;
}
/** A dataset as the ability sees it: its provider. */
export interface DatasetObject {
  providerAgencyId: string | null;
}
/**
 * A user as the ability sees it: its agency and role, and the facts about its agency that the
 * user rules depend on, read by the service in the transaction that makes the change.
 */
export interface UserObject {
  agencyId: string | null;
  role: Role;
  /** Its agency is of kind `oversight` (where AUDITORs belong, party to no agreement). */
  oversightAgency?: boolean;
  /** Its agency has an active STEWARD (other than this user, for `deactivate`). */
  agencyHasActiveSteward?: boolean;
  /** An active OPERATOR other than this user exists. */
  otherActiveOperator?: boolean;
}

type Subjects =
  | 'Agreement'
  | (AgreementObject & ForcedSubject<'Agreement'>)
  | 'Dataset'
  | (DatasetObject & ForcedSubject<'Dataset'>)
  | 'User'
  | (UserObject & ForcedSubject<'User'>)
  | 'Agency'
  | 'Purpose'
  | 'AuditEvent'
  | 'LinkageRun';

/** The control-plane ability of one principal. */
export type ControlAbility = MongoAbility<[ControlAction, Subjects]>;

const ROLES: ReadonlySet<string> = new Set(Object.values(Role));

/** Every rule of the control plane, by role; `agencyId` is the principal's own agency. */
function defineRules(role: Role, agencyId: string | null): ControlAbility {
  const { can, build } = new AbilityBuilder<ControlAbility>(createMongoAbility);
  // Everyone signed in reads the catalog of datasets (metadata only) and the purposes.
  can('read', 'Dataset');
  can('read', 'Purpose');
  can('read', 'Agency');
  switch (role) {
    case Role.OPERATOR:
      can('create', ['Agency', 'Purpose']);
      can('read', 'User');
      // The platform never creates a reader: OPERATORs, AUDITORs of an oversight agency, and the
      // first STEWARD of an agency without an active one (every key it creates is an invitation).
      can('create', 'User', { role: Role.OPERATOR, agencyId: null });
      can('create', 'User', { role: Role.AUDITOR, oversightAgency: true });
      can('create', 'User', { role: Role.STEWARD, oversightAgency: false, agencyHasActiveSteward: false });
      can('deactivate', 'User', { role: Role.OPERATOR, otherActiveOperator: true });
      can('deactivate', 'User', { role: Role.AUDITOR });
      can('read', ['Agreement', 'AuditEvent', 'LinkageRun']);
      can('start', 'LinkageRun');
      break;
    case Role.AUDITOR:
      can('read', ['Agreement', 'AuditEvent', 'LinkageRun', 'User']);
      // Recovery of a locked-out agency starts here; the OPERATOR then invites a first STEWARD.
      can('deactivate', 'User', { role: Role.STEWARD });
      // The oversight board previews what it is asked to sign off, and signs off (or declines) the
      // versions that need it, for its oversight agency.
      can('preview', 'Agreement');
      if (agencyId) can(['approve', 'decline'], 'Agreement', { oversightRequired: true });
      can('party', ['Agreement', 'User']);
      break;
    case Role.STEWARD:
      if (!agencyId) break;
      for (const party of ['providerAgencyId', 'recipientAgencyId'] as const) {
        can(['read', 'propose', 'amend', 'approve', 'revoke', 'preview', 'party'], 'Agreement', {
          [party]: agencyId,
        });
      }
      // What the recipient received is the recipient's to attest destroyed.
      can('attest', 'Agreement', { recipientAgencyId: agencyId });
      can('party', 'Dataset', { providerAgencyId: agencyId });
      can('party', 'User', { agencyId });
      can(['create', 'update', 'ingest', 'recordConsent', 'reportSubjectAccess'], 'Dataset', {
        providerAgencyId: agencyId,
      });
      can(['read'], 'User', { agencyId });
      can('create', 'User', { agencyId, role: { $in: [Role.STEWARD, Role.ANALYST] } });
      can('deactivate', 'User', { agencyId, role: Role.ANALYST });
      // Never the last active STEWARD: the agency would lock itself out.
      can('deactivate', 'User', { agencyId, role: Role.STEWARD, agencyHasActiveSteward: true });
      // What a steward reads of the log is narrowed in SQL by auditVisibility.
      can('read', 'AuditEvent');
      break;
    case Role.ANALYST:
      if (!agencyId) break;
      for (const party of ['providerAgencyId', 'recipientAgencyId'] as const) {
        can(['read', 'party'], 'Agreement', { [party]: agencyId });
      }
      can('party', 'Dataset', { providerAgencyId: agencyId });
      can('party', 'User', { agencyId });
      can('read', 'AuditEvent');
      break;
  }
  return build();
}

const abilities = new Map<string, ControlAbility>();

/**
 * The control-plane ability of a principal: built once per (role, agency) and kept, as the rules
 * depend on nothing else. A principal whose role or agency id is malformed gets an ability that
 * allows nothing.
 */
export function controlAbility(principal: Pick<Principal, 'role' | 'agencyId'>): ControlAbility {
  const { role, agencyId } = principal;
  const valid = ROLES.has(role) && (agencyId === null || isUuid(agencyId));
  const key = valid ? `${role}:${agencyId ?? ''}` : '';
  let ability = abilities.get(key);
  if (!ability) {
    ability = valid ? defineRules(role, agencyId) : createMongoAbility<ControlAbility>([]);
    if (abilities.size > 10_000) abilities.clear();
    abilities.set(key, ability);
  }
  return ability;
}

/** Tags an object for the ability: `asSubject('Agreement', row)`. */
export function asSubject<T extends 'Agreement' | 'Dataset' | 'User', O extends object>(type: T, object: O) {
  // A copy: CASL writes its tag onto the object, which must not change the caller's row.
  return tag(type, { ...object });
}

/**
 * Refuses unless the principal may do `action` on `object`, in the contract's terms, and the one
 * place these refusals are decided: where a principal of an agency may do it to some objects of the
 * type, but has no standing in this one (another agency's), NOT_FOUND with reason NOT_PARTY,
 * answered exactly as for a missing object; otherwise FORBIDDEN with reason ROLE.
 */
export function authorize(
  principal: Pick<Principal, 'role' | 'agencyId'>,
  action: Exclude<ControlAction, 'party'>,
  object: Exclude<Subjects, string>,
  what: string,
  /** What is "not found" when the object is another agency's (default: `what`; `Agency` for a new user). */
  notFoundWhat = what,
): void {
  const ability = controlAbility(principal);
  if (ability.can(action, object)) return;
  const type = ability.detectSubjectType(object) as Extract<Subjects, string>;
  if (
    principal.agencyId !== null &&
    ownedByAnAgency(object) &&
    ability.can(action, type) &&
    !ability.can('party', object)
  ) {
    throw new BrokerError(ErrorCode.NOT_FOUND, `${notFoundWhat} not found`, { reason: 'NOT_PARTY' });
  }
  const article = /^[aeiou]/i.test(what) ? 'an' : 'a';
  throw new BrokerError(ErrorCode.FORBIDDEN, `Your role may not ${action} ${article} ${what.toLowerCase()}`, {
    reason: 'ROLE',
  });
}

/** Whether an object belongs to some agency (an OPERATOR or AUDITOR user of none is nobody's). */
function ownedByAnAgency(object: object): boolean {
  const o = object as Partial<Record<'agencyId' | 'providerAgencyId' | 'recipientAgencyId', unknown>>;
  return [o.agencyId, o.providerAgencyId, o.recipientAgencyId].some((id) => typeof id === 'string');
}

/** Whether the principal may do `action` to every object of a type (no condition narrows it). */
export function canOnAll(
  principal: Pick<Principal, 'role' | 'agencyId'>,
  action: ControlAction,
  type: Extract<Subjects, string>,
): boolean {
  return controlAbility(principal)
    .rulesFor(action, type)
    .some((rule) => !rule.inverted && !rule.conditions);
}

/** Refuses unless the principal may do `action` on some object of the type (FORBIDDEN, reason ROLE). */
export function authorizeType(
  principal: Pick<Principal, 'role' | 'agencyId'>,
  action: ControlAction,
  type: Extract<Subjects, string>,
): void {
  if (!controlAbility(principal).can(action, type)) {
    throw new BrokerError(ErrorCode.FORBIDDEN, 'Not allowed for your role', { reason: 'ROLE' });
  }
}
