import { type Principal, Role } from '@broker/auth';

/** A SQL condition on `audit_event` (under an alias) with its named parameters, for TypeORM's query builder. */
export interface SqlCondition {
  sql: string;
  params: Record<string, unknown>;
}

/** Which optional tables the visibility rules can use; they are looked up once they exist. */
export interface VisibilityTables {
  /** `agreement (id, provider_agency_id, recipient_agency_id)` exists. */
  agreements: boolean;
}

/**
 * The events a caller may read, as one SQL condition, so the database filters and pages them:
 * AUDITOR and OPERATOR read every event; a STEWARD those of {@link stewardVisibility}; an ANALYST
 * only the events it caused.
 */
export function auditVisibility(principal: Principal, tables: VisibilityTables, alias = 'e'): SqlCondition {
  switch (principal.role) {
    case Role.AUDITOR:
    case Role.OPERATOR:
      return { sql: 'TRUE', params: {} };
    case Role.STEWARD:
      // A steward always has an agency (a database constraint); without one it sees nothing.
      if (!principal.agencyId) return { sql: 'FALSE', params: {} };
      return { sql: stewardVisibility(alias, tables), params: { viewerAgencyId: principal.agencyId } };
    case Role.ANALYST:
      return { sql: `${alias}.actor_user_id = :viewerUserId`, params: { viewerUserId: principal.userId } };
  }
}

/**
 * A steward's view of the log, with its agency as `:viewerAgencyId`: events its agency's users caused,
 * events about datasets its agency provides, and, once the agreements table exists, events about
 * agreements its agency is party to (as provider or recipient).
 */
export function stewardVisibility(alias: string, tables: VisibilityTables): string {
  const clauses = [
    `${alias}.actor_agency_id = :viewerAgencyId`,
    `${alias}.dataset_id IN (SELECT d.id FROM dataset d WHERE d.provider_agency_id = :viewerAgencyId)`,
  ];
  if (tables.agreements) {
    clauses.push(
      `${alias}.agreement_id IN (SELECT g.id FROM agreement g
         WHERE g.provider_agency_id = :viewerAgencyId OR g.recipient_agency_id = :viewerAgencyId)`,
    );
  }
  return `(${clauses.join(' OR ')})`;
}
