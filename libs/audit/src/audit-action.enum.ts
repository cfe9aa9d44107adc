import { registerEnumType } from '@nestjs/graphql';

/**
 * What an audit event records. GraphQL exposes the action as a plain `String`, so a new action is a
 * new member here and never a schema change.
 */
export enum AuditAction {
  /** A data-plane row query. */
  QUERY = 'QUERY',
  /** A data-plane aggregate query. */
  AGGREGATE = 'AGGREGATE',
  /** A data-plane export (`POST /data/export`): every row a row query selects, streamed. */
  EXPORT = 'EXPORT',
  AGREEMENT_PROPOSED = 'AGREEMENT_PROPOSED',
  AGREEMENT_AMENDED = 'AGREEMENT_AMENDED',
  AGREEMENT_APPROVED = 'AGREEMENT_APPROVED',
  AGREEMENT_REVOKED = 'AGREEMENT_REVOKED',
  DATASET_REGISTERED = 'DATASET_REGISTERED',
  RECORDS_INGESTED = 'RECORDS_INGESTED',
  CONSENT_RECORDED = 'CONSENT_RECORDED',
  LINKAGE_RUN = 'LINKAGE_RUN',
  USER_CREATED = 'USER_CREATED',
  AGENCY_CREATED = 'AGENCY_CREATED',
  PURPOSE_DEFINED = 'PURPOSE_DEFINED',
  /** A steward read the subject access report of one subject (the subject id is not recorded). */
  SUBJECT_ACCESS_REPORT = 'SUBJECT_ACCESS_REPORT',
}

/** Whether the broker allowed or denied what an event records. */
export enum AuditDecision {
  ALLOW = 'ALLOW',
  DENY = 'DENY',
}

registerEnumType(AuditDecision, { name: 'AuditDecision' });
