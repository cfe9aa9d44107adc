/**
 * The public register (DESIGN §4.4): what anyone may read about every agreement that has ever had a
 * version in force. Nothing here is a record value, a subject id, a user or a key.
 */

/** One released field of a grant. */
export interface RegisterField {
  /** The name the recipient sees. */
  released: string;
  /** The provider's field it comes from. */
  field: string;
  transform: string;
  classification: string | null;
  /** What the provider says the field holds. */
  description: string | null;
  /** Why the purpose needs it at this precision. */
  justification: string | null;
}

/** A field a row filter reads, with the operators it uses on it; never the values compared with. */
export interface RegisterRowFilterField {
  field: string;
  operators: string[];
}

export interface RegisterGrant {
  dataset: string;
  datasetDescription: string | null;
  access: 'ROWS' | 'AGGREGATE_ONLY';
  requireConsent: boolean;
  minCellSize: number;
  linkage: boolean;
  fields: RegisterField[];
  /** null when the grant has no row filter. */
  rowFilter: { fields: RegisterRowFilterField[]; combines: ('$and' | '$or')[] } | null;
}

export interface RegisterMonth {
  /** 'YYYY-MM', UTC. */
  month: string;
  /** Data requests allowed under the agreement. */
  allowed: number;
  /** Data requests denied under it, made by a party's user. */
  denied: number;
  rowsReleased: number;
}

export interface RegisterAgreement {
  id: string;
  title: string;
  provider: string;
  recipient: string;
  purposes: { code: string; description: string | null }[];
  legalBasis: string | null;
  communityBenefit: string | null;
  validFrom: string;
  validUntil: string;
  status: string;
  /** The version shown: the one in force, or the last one that was. */
  version: number;
  /** Whether that version needed oversight. */
  oversightRequired: boolean;
  approvals: { agency: string; oversight: boolean; at: string }[];
  retentionDays: number | null;
  grants: RegisterGrant[];
  months: RegisterMonth[];
  /** Rows released longer ago than retentionDays whose destruction no recipient steward attested. */
  unattestedPastRetention: { rows: number; oldestDay: string | null } | null;
  destructionAttestedThrough: string | null;
  revokedAt: string | null;
}

export interface Register {
  generatedAt: string;
  /** The audit chain's head: quote it, and hold the operator to it later. */
  auditHead: { seq: number; hash: string };
  agreements: RegisterAgreement[];
}
