/**
 * Agreement content: validated from untrusted input (GraphQL AgreementInput) into the canonical
 * form that is stored, hashed, approved and compiled.
 */
import { createHash } from 'node:crypto';
import type { FieldDefinition } from '@broker/registry';
import { INT32_MAX, parseDateTime } from './field-value';
import {
  type AgreementContent,
  type DatasetShape,
  type FieldGrant,
  FieldTransform,
  GrantAccess,
  type GrantContent,
  type RowFilter,
} from './policy.types';
import { transformApplies } from './released-field';
import { oversightProblems } from './oversight';
import { readRowFilter } from './row-filter';
import {
  FORBIDDEN_KEYS,
  type InputProblem,
  ProblemList,
  keyPath,
  ownArray,
  ownFields,
  textProblem,
} from './untrusted-input';

export const MAX_TITLE_LENGTH = 200;
export const MAX_LEGAL_BASIS_LENGTH = 2000;
export const MAX_TERMS_OF_USE_LENGTH = 20_000;
export const MAX_COMMUNITY_BENEFIT_LENGTH = 4000;
export const MAX_JUSTIFICATION_LENGTH = 2000;
export const MAX_ID_LENGTH = 100;
export const MAX_PURPOSES = 50;
export const MAX_GRANTS = 100;
export const MAX_GRANT_FIELDS = 200;
export const MAX_RETENTION_DAYS = 36_500;
export const MIN_CELL_SIZE_RANGE = [1, 1000] as const;
export const DEFAULT_MIN_CELL_SIZE = 11;

/** What validation checks an agreement against: the datasets it names and the defined purposes. */
export interface AgreementValidationContext {
  datasets: Map<string, DatasetShape & { providerAgencyId: string }>;
  purposes: Set<string>;
}

/** The canonical content, or every problem found (up to a bound), so a steward can fix them at once. */
export type AgreementValidation =
  { ok: true; content: AgreementContent } | { ok: false; problems: InputProblem[] };

const AGREEMENT_KEYS: ReadonlySet<string> = new Set([
  'title',
  'providerAgencyId',
  'recipientAgencyId',
  'purposes',
  'validFrom',
  'validUntil',
  'retentionDays',
  'legalBasis',
  'termsOfUse',
  'communityBenefit',
  'grants',
]);
const GRANT_KEYS: ReadonlySet<string> = new Set([
  'datasetId',
  'access',
  'fields',
  'rowFilter',
  'requireConsent',
  'minCellSize',
  'linkage',
]);
const FIELD_GRANT_KEYS: ReadonlySet<string> = new Set(['name', 'transform', 'justification']);
const TRANSFORMS: ReadonlySet<string> = new Set(Object.values(FieldTransform));
const ACCESSES: ReadonlySet<string> = new Set(Object.values(GrantAccess));

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function refuseUnknownKeys(
  fields: Map<string, unknown>,
  allowed: ReadonlySet<string>,
  path: string,
  problems: ProblemList,
): void {
  for (const key of fields.keys()) {
    if (FORBIDDEN_KEYS.has(key)) problems.add(keyPath(path, key), 'is not allowed as a key');
    else if (!allowed.has(key)) problems.add(keyPath(path, key), 'is not a known field');
  }
}

/** A required identifier: a non-empty string, compared exactly. */
function readId(value: unknown, path: string, problems: ProblemList): string | null {
  if (typeof value !== 'string' || value.length === 0) {
    problems.add(path, 'is required');
    return null;
  }
  const problem = textProblem(value, MAX_ID_LENGTH);
  if (problem) {
    problems.add(path, problem);
    return null;
  }
  return value;
}

/** Optional free text, trimmed; empty is null. */
function readText(value: unknown, path: string, max: number, problems: ProblemList): string | null {
  if (value == null) return null;
  if (typeof value !== 'string') {
    problems.add(path, 'must be a string');
    return null;
  }
  const text = value.trim();
  const problem = textProblem(text, max);
  if (problem) problems.add(path, problem);
  // Text with nothing visible in it (spaces, zero-width and other format characters) is no text:
  // a justification of a zero-width space is none.
  return VISIBLE.test(text) ? text : null;
}

/** A character that shows: not white space, not a format character (U+200B, U+FEFF, ...). */
const VISIBLE = /[^\s\p{Cf}]/u;

/** An optional boolean with its default; null means the default, as GraphQL passes it. */
function readBoolean(value: unknown, fallback: boolean, path: string, problems: ProblemList): boolean {
  if (value == null) return fallback;
  if (typeof value !== 'boolean') problems.add(path, 'must be true or false');
  return value === true;
}

function readInteger(
  value: unknown,
  [min, max]: readonly [number, number],
  path: string,
  problems: ProblemList,
): number | null {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.add(path, `must be an integer from ${min} to ${max}`);
    return null;
  }
  return value;
}

function readInstant(value: unknown, path: string, problems: ProblemList): string | null {
  if (value == null) {
    problems.add(path, 'is required');
    return null;
  }
  const at = parseDateTime(value);
  if (!at) problems.add(path, 'must be an ISO 8601 date-time such as 2025-01-01T00:00:00Z');
  return at;
}

function readPurposes(value: unknown, known: Set<string>, problems: ProblemList): string[] {
  const list = ownArray(value);
  if (!list || list.length === 0) {
    problems.add('purposes', 'must name at least one purpose');
    return [];
  }
  if (list.length > MAX_PURPOSES) {
    problems.add('purposes', `must name at most ${MAX_PURPOSES} purposes`);
    return [];
  }
  const purposes = new Set<string>();
  list.forEach((code, i) => {
    if (typeof code !== 'string' || !known.has(code))
      problems.add(`purposes[${i}]`, 'is not a defined purpose');
    else purposes.add(code);
  });
  return [...purposes].sort(byString);
}

function readFieldGrants(
  value: unknown,
  dataset: DatasetShape | null,
  path: string,
  problems: ProblemList,
): FieldGrant[] {
  const list = ownArray(value);
  if (!list || list.length === 0) {
    problems.add(path, 'must grant at least one field');
    return [];
  }
  if (list.length > MAX_GRANT_FIELDS) {
    problems.add(path, `must grant at most ${MAX_GRANT_FIELDS} fields`);
    return [];
  }
  const known = new Map<string, FieldDefinition>(dataset?.fields.map((f) => [f.name, f]));
  const granted = new Set<string>();
  const grants: FieldGrant[] = [];
  list.forEach((item, i) => {
    const at = `${path}[${i}]`;
    const entries = ownFields(item);
    if (!entries) {
      problems.add(at, 'must be an object with name and transform');
      return;
    }
    refuseUnknownKeys(entries, FIELD_GRANT_KEYS, at, problems);
    const name = entries.get('name');
    const justification = readText(
      entries.get('justification'),
      `${at}.justification`,
      MAX_JUSTIFICATION_LENGTH,
      problems,
    );
    const rawTransform = entries.get('transform') ?? FieldTransform.RAW;
    let transform: FieldTransform | null = null;
    if (typeof rawTransform !== 'string' || !TRANSFORMS.has(rawTransform)) {
      problems.add(`${at}.transform`, 'must be RAW, HASH or GENERALIZE');
    } else transform = rawTransform as FieldTransform;
    if (typeof name !== 'string' || name.length === 0) {
      problems.add(`${at}.name`, 'is required');
      return;
    }
    if (!dataset) return;
    const field = known.get(name);
    if (!field) {
      problems.add(`${at}.name`, 'is not a field of the dataset');
      return;
    }
    if (granted.has(name)) {
      problems.add(`${at}.name`, 'is granted twice: a grant releases each field once');
      return;
    }
    granted.add(name);
    if (!transform) return;
    if (!transformApplies(field.type, transform)) {
      problems.add(`${at}.transform`, 'GENERALIZE does not apply to a BOOLEAN field');
      return;
    }
    // Left out when absent, so that versions written before justifications existed keep their hash.
    grants.push(justification ? { name, transform, justification } : { name, transform });
  });
  return grants.sort((a, b) => byString(a.name, b.name));
}

function readGrant(
  value: unknown,
  path: string,
  providerAgencyId: string | null,
  context: AgreementValidationContext,
  seen: Set<string>,
  problems: ProblemList,
): GrantContent | null {
  const entries = ownFields(value);
  if (!entries) {
    problems.add(path, 'must be an object');
    return null;
  }
  refuseUnknownKeys(entries, GRANT_KEYS, path, problems);

  let dataset: (DatasetShape & { providerAgencyId: string }) | null = null;
  const datasetId = readId(entries.get('datasetId'), `${path}.datasetId`, problems);
  if (datasetId !== null) {
    dataset = context.datasets.get(datasetId) ?? null;
    if (!dataset) problems.add(`${path}.datasetId`, 'is not a registered dataset');
    else if (providerAgencyId !== null && dataset.providerAgencyId !== providerAgencyId) {
      problems.add(`${path}.datasetId`, "is not one of the provider's datasets");
      dataset = null;
    } else if (seen.has(datasetId)) {
      problems.add(`${path}.datasetId`, 'is granted twice: an agreement has one grant per dataset');
    }
    seen.add(datasetId);
  }

  const rawAccess = entries.get('access') ?? GrantAccess.ROWS;
  let access = GrantAccess.ROWS;
  if (typeof rawAccess !== 'string' || !ACCESSES.has(rawAccess)) {
    problems.add(`${path}.access`, 'must be ROWS or AGGREGATE_ONLY');
  } else access = rawAccess as GrantAccess;

  const fields = readFieldGrants(entries.get('fields'), dataset, `${path}.fields`, problems);

  let rowFilter: RowFilter | null = null;
  const rawFilter = entries.get('rowFilter');
  if (rawFilter != null && dataset) {
    rowFilter = readRowFilter(rawFilter, dataset, `${path}.rowFilter`, problems)?.filter ?? null;
  }

  const requireConsent = readBoolean(
    entries.get('requireConsent'),
    false,
    `${path}.requireConsent`,
    problems,
  );
  if (requireConsent && dataset && dataset.subjectField === null) {
    problems.add(
      `${path}.requireConsent`,
      'the dataset has no subject field, so consent cannot be checked and no row would be released',
    );
  }
  const rawCellSize = entries.get('minCellSize');
  const minCellSize =
    rawCellSize == null
      ? DEFAULT_MIN_CELL_SIZE
      : readInteger(rawCellSize, MIN_CELL_SIZE_RANGE, `${path}.minCellSize`, problems);
  const linkage = readBoolean(entries.get('linkage'), false, `${path}.linkage`, problems);

  if (datasetId === null || minCellSize === null) return null;
  return { datasetId, access, fields, rowFilter, requireConsent, minCellSize, linkage };
}

/**
 * Validates untrusted agreement input against the registered datasets and purposes. Returns the
 * canonical content (defaults filled, dates in UTC, purposes, grants and fields sorted) or problems.
 * A version that needs oversight must carry a community benefit and justifications, unless
 * `oversightText` is false (a preview of a draft).
 */
export function validateAgreementContent(
  input: unknown,
  context: AgreementValidationContext,
  options: { oversightText?: boolean } = {},
): AgreementValidation {
  const problems = new ProblemList();
  const entries = ownFields(input);
  if (!entries) return { ok: false, problems: [{ path: '', message: 'an agreement must be an object' }] };
  refuseUnknownKeys(entries, AGREEMENT_KEYS, '', problems);

  const rawTitle = entries.get('title');
  const title = typeof rawTitle === 'string' ? readText(rawTitle, 'title', MAX_TITLE_LENGTH, problems) : null;
  if (!title) problems.add('title', 'is required');

  const providerAgencyId = readId(entries.get('providerAgencyId'), 'providerAgencyId', problems);
  const recipientAgencyId = readId(entries.get('recipientAgencyId'), 'recipientAgencyId', problems);
  if (providerAgencyId !== null && providerAgencyId === recipientAgencyId) {
    problems.add('recipientAgencyId', 'must differ from the provider');
  }

  const purposes = readPurposes(entries.get('purposes'), context.purposes, problems);

  const validFrom = readInstant(entries.get('validFrom'), 'validFrom', problems);
  const validUntil = readInstant(entries.get('validUntil'), 'validUntil', problems);
  if (validFrom && validUntil && !(validFrom < validUntil)) {
    problems.add('validUntil', 'must be after validFrom');
  }

  const rawRetention = entries.get('retentionDays');
  const retentionDays =
    rawRetention == null
      ? null
      : readInteger(rawRetention, [1, Math.min(MAX_RETENTION_DAYS, INT32_MAX)], 'retentionDays', problems);
  const legalBasis = readText(entries.get('legalBasis'), 'legalBasis', MAX_LEGAL_BASIS_LENGTH, problems);
  const termsOfUse = readText(entries.get('termsOfUse'), 'termsOfUse', MAX_TERMS_OF_USE_LENGTH, problems);
  const communityBenefit = readText(
    entries.get('communityBenefit'),
    'communityBenefit',
    MAX_COMMUNITY_BENEFIT_LENGTH,
    problems,
  );

  const grants: GrantContent[] = [];
  const list = ownArray(entries.get('grants'));
  if (!list || list.length === 0) problems.add('grants', 'an agreement needs at least one grant');
  else if (list.length > MAX_GRANTS) problems.add('grants', `an agreement has at most ${MAX_GRANTS} grants`);
  else {
    const seen = new Set<string>();
    for (let i = 0; i < list.length && !problems.full; i++) {
      const grant = readGrant(list[i], `grants[${i}]`, providerAgencyId, context, seen, problems);
      if (grant) grants.push(grant);
    }
  }

  if (!problems.empty || !title || !providerAgencyId || !recipientAgencyId || !validFrom || !validUntil) {
    return { ok: false, problems: problems.problems };
  }
  grants.sort((a, b) => byString(a.datasetId, b.datasetId));
  const content: AgreementContent = {
    title,
    providerAgencyId,
    recipientAgencyId,
    purposes,
    validFrom,
    validUntil,
    retentionDays,
    legalBasis,
    termsOfUse,
    ...(communityBenefit ? { communityBenefit } : {}),
    grants,
  };
  // A preview shows a draft before its benefit and justifications are written; a proposal needs them.
  const lacking = options.oversightText === false ? [] : oversightProblems(content, context.datasets);
  if (lacking.length) return { ok: false, problems: lacking };
  return { ok: true, content };
}

/**
 * JSON with the keys of every object sorted (by UTF-16 code unit) and no whitespace: the same
 * content always gives the same text, whatever order its keys were built or stored in (jsonb
 * reorders them).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonical JSON has no non-finite numbers');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  if (typeof value === 'object' && !(value instanceof Date)) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
}

/** The lowercase hex SHA-256 of an agreement version's canonical JSON: what both parties approve. */
export function contentHash(content: AgreementContent): string {
  return createHash('sha256').update(canonicalJson(content), 'utf8').digest('hex');
}
