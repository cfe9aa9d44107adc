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
  /** An AUDITOR declined a version that needs oversight: it never comes into force. */
  AGREEMENT_DECLINED = 'AGREEMENT_DECLINED',
  /** A recipient steward attested that rows released under an agreement up to a date are destroyed. */
  DESTRUCTION_ATTESTED = 'DESTRUCTION_ATTESTED',
  /** A batch of records past their dataset's retention was destroyed (rowCount: how many). */
  RECORDS_DESTROYED = 'RECORDS_DESTROYED',
  /** A steward changed a dataset's title, description or retention. */
  DATASET_UPDATED = 'DATASET_UPDATED',
  DATASET_REGISTERED = 'DATASET_REGISTERED',
  RECORDS_INGESTED = 'RECORDS_INGESTED',
  CONSENT_RECORDED = 'CONSENT_RECORDED',
  LINKAGE_RUN = 'LINKAGE_RUN',
  /** A reviewer decided whether a pair of records is one person (the records are not named). */
  LINKAGE_PAIR_DECIDED = 'LINKAGE_PAIR_DECIDED',
  /** A steward read the records of a reviewed pair, its agency's own (the records are not named). */
  LINKAGE_PAIR_READ = 'LINKAGE_PAIR_READ',
  USER_CREATED = 'USER_CREATED',
  /** A user was deactivated; its keys stopped. */
  USER_DEACTIVATED = 'USER_DEACTIVATED',
  /** A user replaced its key (an invitation accepted, or a routine rotation). */
  API_KEY_ROTATED = 'API_KEY_ROTATED',
  /**
   * The accounts (users and their keys) that existed before the chain vouched for them, vouched for
   * as found, once, by the first start after the upgrade (rowCount: how many).
   */
  ACCOUNTS_VOUCHED = 'ACCOUNTS_VOUCHED',
  /** A control-plane or REST request was refused (decision DENY, with the contract's reason). */
  REQUEST_REFUSED = 'REQUEST_REFUSED',
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

registerEnumType(AuditDecision, {
  name: 'AuditDecision',
  description: 'Whether the broker did what was asked.',
  valuesMap: {
    ALLOW: { description: 'Done (data released, change made).' },
    DENY: { description: 'Refused; the event says why.' },
  },
});
