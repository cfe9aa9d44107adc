/**
 * Oversight (DESIGN §4.1 "Oversight"): which agreement versions need an AUDITOR's approval besides
 * both parties', what they must carry to be proposed at all, and the classification an identity
 * role cannot be registered below. Pure: content and dataset shapes in, decisions out.
 */
import type { FieldDefinition } from '@broker/registry';
import { type AgreementContent, type DatasetShape, FieldTransform } from './policy.types';
import type { InputProblem } from './untrusted-input';

/** Identity roles whose values name a person outright: never classified below DIRECT_IDENTIFIER. */
const DIRECT_ROLES: ReadonlySet<string> = new Set([
  'FIRST_NAME',
  'MIDDLE_NAME',
  'LAST_NAME',
  'SSN',
  'ID_NUMBER',
]);

/** Classifications that bring a field under oversight unless it is released as HASH. */
const OVERSEEN: ReadonlySet<string> = new Set(['DIRECT_IDENTIFIER', 'SENSITIVE']);

/**
 * The problem with a field's classification given its identity role, or null. A field with a direct
 * identity role must be DIRECT_IDENTIFIER; with any other identity role at least QUASI_IDENTIFIER
 * (SENSITIVE is not a weaker class, so it is refused too: an identifier is not merely sensitive).
 */
export function classificationProblem(
  field: Pick<FieldDefinition, 'classification' | 'identity'>,
): string | null {
  if (!field.identity) return null;
  const classification = String(field.classification);
  if (DIRECT_ROLES.has(String(field.identity))) {
    return classification === 'DIRECT_IDENTIFIER'
      ? null
      : `must be DIRECT_IDENTIFIER: a ${String(field.identity)} names a person`;
  }
  return classification === 'DIRECT_IDENTIFIER' || classification === 'QUASI_IDENTIFIER'
    ? null
    : `must be QUASI_IDENTIFIER or DIRECT_IDENTIFIER: a ${String(field.identity)} helps identify a person`;
}

/** One granted field that brings a version under oversight. */
export interface OverseenField {
  datasetId: string;
  name: string;
  transform: FieldTransform;
  classification: string;
  justification: string | null;
}

/**
 * Whether a field released so is released as good as raw for oversight: every transform but HASH,
 * and HASH of a BOOLEAN, whose two hashes one known record or the counts of each tell apart (so a
 * sensitive yes/no cannot escape the board by being hashed).
 */
function overseenAs(transform: FieldTransform, type: string): boolean {
  return transform !== FieldTransform.HASH || type === 'BOOLEAN';
}

/**
 * The fields of a version that need oversight: DIRECT_IDENTIFIER or SENSITIVE, released other than
 * as HASH, or as the HASH of a BOOLEAN. A grant's dataset missing from `datasets` contributes
 * nothing (it cannot be compiled either).
 */
export function overseenFields(
  content: Pick<AgreementContent, 'grants'>,
  datasets: ReadonlyMap<string, Pick<DatasetShape, 'fields'>>,
): OverseenField[] {
  const out: OverseenField[] = [];
  for (const grant of content.grants) {
    const fields = new Map(datasets.get(grant.datasetId)?.fields.map((f) => [f.name, f]));
    for (const granted of grant.fields) {
      const field = fields.get(granted.name);
      if (!field || !overseenAs(granted.transform, String(field.type))) continue;
      if (!OVERSEEN.has(String(field.classification))) continue;
      out.push({
        datasetId: grant.datasetId,
        name: granted.name,
        transform: granted.transform,
        classification: String(field.classification),
        justification: granted.justification ?? null,
      });
    }
  }
  return out;
}

/** Whether a version needs an AUDITOR's approval besides both parties': `oversightRequired`. */
export function oversightRequired(
  content: Pick<AgreementContent, 'grants'>,
  datasets: ReadonlyMap<string, Pick<DatasetShape, 'fields'>>,
): boolean {
  return content.grants.some((g) => g.linkage) || overseenFields(content, datasets).length > 0;
}

/**
 * What a version under oversight lacks to be proposed: a community-benefit statement, and a
 * justification for every overseen field. Empty when it needs no oversight or lacks nothing.
 */
export function oversightProblems(
  content: Pick<AgreementContent, 'grants' | 'communityBenefit'>,
  datasets: ReadonlyMap<string, Pick<DatasetShape, 'fields'>>,
): InputProblem[] {
  if (!oversightRequired(content, datasets)) return [];
  const problems: InputProblem[] = [];
  if (!content.communityBenefit) {
    problems.push({
      path: 'communityBenefit',
      message:
        'is required: this agreement releases identifying or sensitive fields or grants linkage, so it must say who in the community gains and how',
    });
  }
  for (const field of overseenFields(content, datasets)) {
    if (field.justification) continue;
    problems.push({
      path: `grants(${field.datasetId}).fields(${field.name}).justification`,
      message:
        field.transform === FieldTransform.HASH
          ? `is required: ${field.name} (${field.classification}) is a BOOLEAN released HASH, which hides neither of its two values; say why the purpose needs it`
          : `is required: ${field.name} (${field.classification}) is released ${field.transform}; say why the purpose needs it at this precision`,
    });
  }
  return problems;
}

/**
 * Whether the approvals of one version put it in force: both parties', and where oversight is
 * required an oversight agency's too (any approving agency that is not a party: only an AUDITOR can
 * approve for one). A declined version never comes into force.
 */
export function approvalsComplete(
  agreement: { providerAgencyId: string; recipientAgencyId: string },
  version: { oversightRequired: boolean; declined: boolean; approvalAgencyIds: readonly string[] },
): boolean {
  if (version.declined) return false;
  const agencies = new Set(version.approvalAgencyIds);
  if (!agencies.has(agreement.providerAgencyId) || !agencies.has(agreement.recipientAgencyId)) return false;
  if (!version.oversightRequired) return true;
  return [...agencies].some((a) => a !== agreement.providerAgencyId && a !== agreement.recipientAgencyId);
}
