/** The control-plane types the admin UI reads, and the operations it sends (DESIGN §4.1). */

export type Role = 'OPERATOR' | 'STEWARD' | 'ANALYST' | 'AUDITOR';
export const ROLES: Role[] = ['OPERATOR', 'STEWARD', 'ANALYST', 'AUDITOR'];

export type FieldType = 'STRING' | 'INTEGER' | 'FLOAT' | 'BOOLEAN' | 'DATE' | 'DATETIME';
export const FIELD_TYPES: FieldType[] = ['STRING', 'INTEGER', 'FLOAT', 'BOOLEAN', 'DATE', 'DATETIME'];

export type Classification = 'DIRECT_IDENTIFIER' | 'QUASI_IDENTIFIER' | 'SENSITIVE' | 'NON_SENSITIVE';
export const CLASSIFICATIONS: Classification[] = [
  'DIRECT_IDENTIFIER',
  'QUASI_IDENTIFIER',
  'SENSITIVE',
  'NON_SENSITIVE',
];

/**
 * The linkage library's list (libs/linkage/src/core/identity-fields.ts), which this browser bundle
 * cannot import; libs/linkage/src/core/identity-fields.spec.ts fails when the two differ.
 */
export const IDENTITY_ROLES = [
  'FIRST_NAME',
  'MIDDLE_NAME',
  'LAST_NAME',
  'DATE_OF_BIRTH',
  'SEX',
  'SSN',
  'ZIP',
  'ID_NUMBER',
  'ADDRESS',
  'CITY',
] as const;
export type IdentityRole = (typeof IDENTITY_ROLES)[number];

export type FieldTransform = 'RAW' | 'HASH' | 'GENERALIZE';
export type GrantAccess = 'ROWS' | 'AGGREGATE_ONLY';
export type AgreementStatus = 'PROPOSED' | 'PENDING' | 'ACTIVE' | 'EXPIRED' | 'REVOKED';
export const AGREEMENT_STATUSES: AgreementStatus[] = ['PROPOSED', 'PENDING', 'ACTIVE', 'EXPIRED', 'REVOKED'];
export type LinkageStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface Agency {
  id: string;
  name: string;
  kind: string | null;
  createdAt: string;
}

export interface User {
  id: string;
  email: string;
  displayName: string | null;
  role: Role;
  agency: { id: string; name: string } | null;
  /** Not deactivated (in `users` answers). */
  active?: boolean;
  /** Its key is an invitation not yet rotated by its owner (in `me` and `users` answers). */
  invitationPending?: boolean;
}

export interface Purpose {
  id: string;
  code: string;
  description: string;
  createdAt: string;
}

export interface DatasetField {
  name: string;
  type: FieldType;
  classification: Classification;
  identity: IdentityRole | null;
  required: boolean;
  description: string | null;
}

export interface Dataset {
  id: string;
  slug: string;
  title: string;
  description: string | null;
  provider: { id: string; name: string };
  keyField: string;
  subjectField: string | null;
  fields: DatasetField[];
  /** Records whose DATE/DATETIME `retentionField` is older than this many days are destroyed daily. */
  retentionDays: number | null;
  retentionField: string | null;
  createdAt: string;
}

/**
 * What a proposed retention would destroy at the next daily run, beside the current retention,
 * counted by the broker with the retention job's own rule (`retentionPreview`).
 */
export interface RetentionPreview {
  datasetId: string;
  /** The proposed retention, as the broker validated it (both null: none). */
  retentionDays: number | null;
  retentionField: string | null;
  destroyed: number;
  destroyedByCurrent: number;
  /** Records whose proposed retention field is empty: retention keeps them. */
  keptWithoutDate: number;
  records: number;
  cutoff: string | null;
  asOf: string;
}

/** A row filter as agreements store it: `{"f": v}`, operators, `$and`, `$or`. */
export type RowFilterJson = Record<string, unknown>;

export interface GrantContent {
  datasetId: string;
  access: GrantAccess;
  fields: { name: string; transform: FieldTransform; justification?: string }[];
  rowFilter: RowFilterJson | null;
  requireConsent: boolean;
  minCellSize: number;
  linkage: boolean;
}

/** The canonical content of an agreement version, as stored and approved. */
export interface AgreementContent {
  title: string;
  providerAgencyId: string;
  recipientAgencyId: string;
  purposes: string[];
  validFrom: string;
  validUntil: string;
  retentionDays: number | null;
  legalBasis: string | null;
  termsOfUse: string | null;
  communityBenefit?: string;
  grants: GrantContent[];
}

export interface Approval {
  agency: { id: string; name: string };
  user: { id: string; email: string };
  at: string;
}

export interface AgreementVersion {
  version: number;
  hash: string;
  content: AgreementContent;
  createdAt: string;
  approvals: Approval[];
  oversightRequired: boolean;
  decline: { reason: string; at: string; agency: { id: string; name: string } } | null;
}

export interface Agreement {
  id: string;
  title: string;
  status: AgreementStatus;
  provider: { id: string; name: string };
  recipient: { id: string; name: string };
  currentVersion: number;
  inForceVersion: number | null;
  purposes: string[];
  validFrom: string;
  validUntil: string;
  revokedAt: string | null;
  revokeReason: string | null;
  versions: AgreementVersion[];
  oversightRequired: boolean;
  destructionAttestedThrough: string | null;
}

export interface ReleasedFieldPreview {
  name: string;
  type: string;
  transform: FieldTransform;
  sourceField: string;
}

export interface DatasetPreview {
  dataset: { id: string; slug: string; title: string };
  access: GrantAccess;
  fields: ReleasedFieldPreview[];
  rowFilter: RowFilterJson | null;
  requireConsent: boolean;
  minCellSize: number;
  personKey: boolean;
  rowsReleased: number | null;
}

export interface PurposePreview {
  purpose: string;
  datasets: DatasetPreview[];
}

/** Which plane refused a request: the control plane (`/graphql`, REST) or the data plane. */
export type RequestPlane = 'CONTROL' | 'DATA';

export interface AuditEvent {
  seq: number;
  at: string;
  actorUserId: string | null;
  actorAgencyId: string | null;
  action: string;
  decision: 'ALLOW' | 'DENY';
  reason: string | null;
  purpose: string | null;
  datasetId: string | null;
  agreementId: string | null;
  agreementVersion: number | null;
  fields: string[] | null;
  rowCount: number | null;
  /** DENY events: the plane that refused. */
  plane: RequestPlane | null;
  /** DENY events: the requests refused (above 1 where LIMIT refusals were merged). */
  refusals: number | null;
  /** Refused control-plane and REST requests: the operations or route asked. */
  operations: string[] | null;
  hash: string;
}

export interface AuditVerification {
  valid: boolean;
  checked: number;
  firstBrokenSeq: number | null;
}

export interface AccessCount {
  agreementId: string;
  day: string;
  allowed: number;
  denied: number;
}

/** Requests of one user refused on one day (UTC), by one plane, for one reason. */
export interface RefusalCount {
  day: string;
  plane: RequestPlane;
  actorAgencyId: string | null;
  actorUserId: string | null;
  reason: string | null;
  refusals: number;
  events: number;
}

/** A user and its new API key, shown once (`createUser`, `rotateApiKey`). */
export interface CreatedUser {
  user: User;
  apiKey: string;
}

export interface LinkageStats {
  records: number;
  candidatePairs: number;
  links: number;
  persons: number;
  unparsed: { role: string; values: number }[];
  pairsByRule: { rule: string; pairs: number }[];
}

export interface LinkageReviewPair {
  pair: number;
  weight: number;
  probability: number;
  decision: boolean | null;
  levels: { comparison: string; level: string; weight: number }[];
}

export interface ComparisonWeights {
  comparison: string;
  levels: { level: string; m: number; u: number; weight: number }[];
}

export interface WeightBin {
  lower: number;
  upper: number;
  pairs: number;
}

export interface LinkageRun {
  id: string;
  status: LinkageStatus;
  progress: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  stats: LinkageStats | null;
  trigger: string;
  createdAt: string;
  threshold: number | null;
  thresholdProbability: number | null;
  comparisons: ComparisonWeights[];
  weightHistogram: WeightBin[];
  /** Times retention sent the run back to its estimate phase (it destroyed records the model had learned from). */
  restarts: number;
}

const AGREEMENT_FIELDS = `id title status currentVersion inForceVersion purposes validFrom validUntil
  revokedAt revokeReason provider { id name } recipient { id name } oversightRequired destructionAttestedThrough
  versions { version hash content createdAt approvals { agency { id name } user { id email } at }
    oversightRequired decline { reason at agency { id name } } }`;

const DATASET_FIELDS = `id slug title description keyField subjectField retentionDays retentionField
  createdAt provider { id name }
  fields { name type classification identity required description }`;

const LINKAGE_FIELDS = `id status progress startedAt finishedAt error trigger createdAt threshold restarts
  thresholdProbability stats { records candidatePairs links persons unparsed { role values }
  pairsByRule { rule pairs } } comparisons { comparison levels { level m u weight } }
  weightHistogram { lower upper pairs }`;

/** Every GraphQL operation the admin UI sends. */
export const Q = {
  me: `{ me { id email displayName role agency { id name } invitationPending } }`,
  agencies: `{ agencies { id name kind createdAt } }`,
  purposes: `{ purposes { id code description createdAt } }`,
  datasets: `{ datasets { ${DATASET_FIELDS} } }`,
  dataset: `query($id: ID!) { dataset(id: $id) { ${DATASET_FIELDS} } }`,
  agreements: `query($status: AgreementStatus) { agreements(status: $status) { ${AGREEMENT_FIELDS} } }`,
  agreement: `query($id: ID!) { agreement(id: $id) { ${AGREEMENT_FIELDS} } }`,
  previewAgreement: `query($input: AgreementInput!) { previewAgreement(input: $input) {
    purpose datasets { dataset { id slug title } access rowFilter requireConsent minCellSize personKey rowsReleased
      fields { name type transform sourceField } } } }`,
  auditEvents: `query($filter: AuditFilter, $first: Int, $after: String) {
    auditEvents(filter: $filter, first: $first, after: $after) {
      nodes { seq at actorUserId actorAgencyId action decision reason purpose datasetId agreementId
        agreementVersion fields rowCount plane refusals operations hash }
      pageInfo { hasNextPage endCursor } } }`,
  verifyAuditChain: `query($knownHeads: [AuditHeadInput!]) {
    verifyAuditChain(knownHeads: $knownHeads) { valid checked firstBrokenSeq } }`,
  auditAccessSeries: `query($from: DateTime, $to: DateTime) {
    auditAccessSeries(from: $from, to: $to) { agreementId day allowed denied } }`,
  auditRefusalSeries: `query($from: DateTime, $to: DateTime) {
    auditRefusalSeries(from: $from, to: $to) { day plane actorAgencyId actorUserId reason refusals events } }`,
  linkageRuns: `{ linkageRuns { ${LINKAGE_FIELDS} } }`,
  linkageRun: `query($id: ID!) { linkageRun(id: $id) { ${LINKAGE_FIELDS} } }`,
  startLinkage: `mutation { startLinkage { ${LINKAGE_FIELDS} } }`,
  linkageReviewPairs: `query($runId: ID!) { linkageReviewPairs(runId: $runId) {
    pair weight probability decision levels { comparison level weight } } }`,
  decideLinkagePair: `mutation($runId: ID!, $pair: Int!, $same: Boolean!) {
    decideLinkagePair(runId: $runId, pair: $pair, same: $same) { pair decision } }`,
  createAgency: `mutation($input: CreateAgencyInput!) { createAgency(input: $input) { id name kind createdAt } }`,
  createUser: `mutation($input: CreateUserInput!) { createUser(input: $input) {
    user { id email displayName role agency { id name } } apiKey } }`,
  users: `{ users { id email displayName role agency { id name } active invitationPending } }`,
  deactivateUser: `mutation($id: ID!) { deactivateUser(id: $id) { id active } }`,
  rotateApiKey: `mutation { rotateApiKey {
    user { id email displayName role agency { id name } invitationPending } apiKey } }`,
  definePurpose: `mutation($input: DefinePurposeInput!) { definePurpose(input: $input) { id code description createdAt } }`,
  registerDataset: `mutation($input: RegisterDatasetInput!) { registerDataset(input: $input) { ${DATASET_FIELDS} } }`,
  retentionPreview: `query($datasetId: ID!, $retentionDays: Int, $retentionField: String) {
    retentionPreview(datasetId: $datasetId, retentionDays: $retentionDays, retentionField: $retentionField) {
      datasetId retentionDays retentionField destroyed destroyedByCurrent keptWithoutDate records cutoff asOf } }`,
  updateDataset: `mutation($id: ID!, $input: UpdateDatasetInput!) { updateDataset(id: $id, input: $input) { ${DATASET_FIELDS} } }`,
  recordConsent: `mutation($input: ConsentInput!) { recordConsent(input: $input) { id subjectId purpose granted recordedAt } }`,
  proposeAgreement: `mutation($input: AgreementInput!) { proposeAgreement(input: $input) { ${AGREEMENT_FIELDS} } }`,
  amendAgreement: `mutation($id: ID!, $input: AgreementInput!) { amendAgreement(id: $id, input: $input) { ${AGREEMENT_FIELDS} } }`,
  approveAgreement: `mutation($id: ID!, $version: Int!) { approveAgreement(id: $id, version: $version) { ${AGREEMENT_FIELDS} } }`,
  revokeAgreement: `mutation($id: ID!, $reason: String!) { revokeAgreement(id: $id, reason: $reason) { ${AGREEMENT_FIELDS} } }`,
  declineAgreement: `mutation($id: ID!, $version: Int!, $reason: String!) {
    declineAgreement(id: $id, version: $version, reason: $reason) { ${AGREEMENT_FIELDS} } }`,
  attestDestruction: `mutation($id: ID!, $through: DateTime!) {
    attestDestruction(agreementId: $id, through: $through) { ${AGREEMENT_FIELDS} } }`,
};
