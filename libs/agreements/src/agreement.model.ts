import { Field, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { GraphQLJSONObject } from 'graphql-scalars';
import { FieldTransform, GrantAccess } from '@broker/policy';
import { AgencyModel, UserModel } from '@broker/registry';
import { AgreementStatus } from './agreement-status';

registerEnumType(FieldTransform, {
  name: 'FieldTransform',
  description:
    'The precision at which a grant releases a field. A reduced value is released under a name of its ' +
    'own, so a released name always means one precision and one type, whichever agreement releases it.',
  valuesMap: {
    RAW: { description: "The value as stored, under the field's own name." },
    HASH: {
      description:
        'Released as `<field>_hash`: the lowercase hex HMAC-SHA-256 of the value under a key of the ' +
        "agreement's own, so equal values match inside one agreement and never across agreements.",
    },
    GENERALIZE: {
      description:
        'Released coarser: a DATE or DATETIME as `<field>_year` (its year), an INTEGER or FLOAT as ' +
        '`<field>_band` (the lower bound of its 5-wide band), a STRING as `<field>_prefix` (its first 3 ' +
        'characters). Not for BOOLEAN fields.',
    },
  },
});
registerEnumType(GrantAccess, {
  name: 'GrantAccess',
  description: 'What the recipient may do with a granted dataset.',
  valuesMap: {
    ROWS: {
      description: 'Read its records (the released values), page by page or by export, and count them.',
    },
    AGGREGATE_ONLY: {
      description:
        'Only count them: no record leaves. Groups below the minimum cell size are left out or ' +
        'suppressed, and counts are perturbed so that no small count can be derived.',
    },
  },
});

/** One side's approval of one agreement version. */
@ObjectType('Approval', {
  description:
    "One side's approval of one agreement version: a steward of the provider or of the recipient, or, " +
    'where the version needs oversight, an AUDITOR for its oversight agency.',
})
export class ApprovalModel {
  @Field(() => AgencyModel, { description: 'The agency that approved: a party, or the oversight agency.' })
  agency?: AgencyModel;
  agencyId!: string;
  @Field(() => UserModel, { description: 'The user who approved on its behalf.' }) user?: UserModel;
  userId!: string;
  @Field(() => DateTimeScalar, { description: 'When the approval was recorded.' }) at!: Date;
}

/** An AUDITOR's decline of a version that needed oversight: that version never comes into force. */
@ObjectType('Decline', {
  description:
    "An AUDITOR's decline of a version that needed oversight: that version never comes into force; the " +
    'parties may amend the agreement and ask again.',
})
export class DeclineModel {
  @Field(() => AgencyModel, { description: 'The oversight agency that declined.' }) agency?: AgencyModel;
  agencyId!: string;
  @Field(() => UserModel, { description: 'The AUDITOR who declined.' }) user?: UserModel;
  userId!: string;
  @Field({ description: 'Why the version was declined, as the AUDITOR wrote it.' }) reason!: string;
  @Field(() => DateTimeScalar, { description: 'When it was declined.' }) at!: Date;
}

/** One immutable version of an agreement; its hash covers its whole content. */
@ObjectType('AgreementVersion', {
  description:
    'One version of an agreement, never changed once written: proposing creates version 1, each ' +
    'amendment the next. A version comes into force when both parties (and, where it needs oversight, ' +
    'an AUDITOR) approved this same version.',
})
export class AgreementVersionModel {
  @Field(() => Int, { description: 'Its number: 1 for the proposal, one more for each amendment.' })
  version!: number;
  @Field({
    description:
      'The lowercase hex SHA-256 of its content as canonical JSON (keys sorted, no whitespace): what ' +
      'the approvals approve. Anyone holding the content can recompute it.',
  })
  hash!: string;
  @Field(() => GraphQLJSONObject, {
    description:
      'Its whole content as validated and stored: title, parties, purposes, validity window, retention, ' +
      'legal basis, terms of use, community benefit and grants (datasets, released fields and their ' +
      'transforms, row filters, consent, minimum cell size, linkage), defaults filled in.',
  })
  content!: Record<string, unknown>;
  @Field(() => DateTimeScalar, { description: 'When it was proposed or amended.' }) createdAt!: Date;
  @Field(() => [ApprovalModel], {
    description:
      'Approvals of this version: the side that proposed or amended it approves on writing it; the ' +
      'other side, and an AUDITOR where oversight is required, approve it afterwards.',
  })
  approvals!: ApprovalModel[];
  @Field({
    description:
      "Whether this version needs an AUDITOR's approval besides both parties': it releases a " +
      'DIRECT_IDENTIFIER or SENSITIVE field other than as HASH, or grants linkage.',
  })
  oversightRequired!: boolean;
  @Field(() => DeclineModel, {
    nullable: true,
    description: "An AUDITOR's decline of this version (it then never comes into force); null if none.",
  })
  decline!: DeclineModel | null;
}

/** A data-sharing agreement between a provider and a recipient agency. */
@ObjectType('Agreement', {
  description:
    'A data-sharing agreement: a provider agency grants a recipient agency datasets for named purposes, ' +
    'field by field, within a validity window. It is enforced on every data request: only the version ' +
    'in force governs, and every request under it is recorded in the audit log.',
})
export class AgreementModel {
  @Field(() => ID, { description: 'The agreement id, the same for all its versions.' }) id!: string;
  @Field({ description: 'Its title, as the current (latest) version states it.' }) title!: string;
  @Field(() => AgreementStatus, {
    description: 'Where it stands now, following the version in force (see AgreementStatus).',
  })
  status!: AgreementStatus;
  @Field(() => AgencyModel, { description: 'The agency whose datasets are shared.' }) provider?: AgencyModel;
  providerAgencyId!: string;
  @Field(() => AgencyModel, { description: 'The agency that receives the data.' }) recipient?: AgencyModel;
  recipientAgencyId!: string;
  @Field(() => Int, {
    description:
      'The latest version: the one an approval must name. It may await approval while an earlier one governs.',
  })
  currentVersion!: number;
  @Field(() => Int, {
    nullable: true,
    description:
      'The version that governs data requests: the latest one with every required approval (both ' +
      'parties, and an AUDITOR where oversight is required). Null while none has them.',
  })
  inForceVersion!: number | null;
  @Field(() => [String], { description: 'The purpose codes of the current version.' }) purposes!: string[];
  @Field(() => DateTimeScalar, { description: "Start of the current version's validity window." })
  validFrom!: Date;
  @Field(() => DateTimeScalar, {
    description: "End of the current version's validity window: access stops exactly then.",
  })
  validUntil!: Date;
  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'When a party revoked it (final: access stopped at once); null unless revoked.',
  })
  revokedAt!: Date | null;
  @Field(() => String, {
    nullable: true,
    description: 'Why it was revoked, as the revoking steward wrote it; null unless revoked.',
  })
  revokeReason!: string | null;
  @Field(() => [AgreementVersionModel], { description: 'Every version, oldest first, with its approvals.' })
  versions!: AgreementVersionModel[];
  @Field({
    description:
      "Whether the current version needs an AUDITOR's approval besides both parties' (it releases a " +
      'DIRECT_IDENTIFIER or SENSITIVE field other than as HASH, or grants linkage).',
  })
  oversightRequired!: boolean;
  @Field(() => AgreementVersionModel, {
    nullable: true,
    description:
      'The version in force, or the last one that was (after expiry or revocation); null if none ever was.',
  })
  inForce!: AgreementVersionModel | null;
  @Field(() => DateTimeScalar, {
    nullable: true,
    description:
      "The recipient's latest attestation (attestDestruction): every row released under the agreement " +
      'up to this instant has been destroyed. Null until the first attestation.',
  })
  destructionAttestedThrough!: Date | null;
}

@InputType({ description: 'One field of a granted dataset, and the precision at which it is released.' })
export class FieldGrantInput {
  @Field({ description: "The field's name in the dataset." }) name!: string;
  @Field(() => FieldTransform, {
    nullable: true,
    defaultValue: FieldTransform.RAW,
    description: 'How it is released: RAW (default), HASH or GENERALIZE (see FieldTransform).',
  })
  transform?: FieldTransform | null;
  @Field(() => String, {
    nullable: true,
    description:
      'Why the purpose needs this field at this precision. Required for a DIRECT_IDENTIFIER or SENSITIVE ' +
      'field released other than as HASH (such a version needs oversight).',
  })
  justification?: string | null;
}

@InputType({ description: "One dataset of the provider's, granted to the recipient, and on what terms." })
export class GrantInput {
  @Field(() => ID, {
    description: 'The dataset; it must belong to the provider, and appear in one grant only.',
  })
  datasetId!: string;
  @Field(() => GrantAccess, {
    nullable: true,
    defaultValue: GrantAccess.ROWS,
    description: 'ROWS (default): its records may be read; AGGREGATE_ONLY: they may only be counted.',
  })
  access?: GrantAccess | null;
  @Field(() => [FieldGrantInput], {
    description:
      'The fields released, each once, with its transform; at least one. Nothing else is released.',
  })
  fields!: FieldGrantInput[];
  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description:
      'Which rows are shared, as conditions on the raw fields: {"f": v}, or {"f": {"$gt": v}} with $eq ' +
      '$ne $gt $gte $lt $lte $in $nin, and $and / $or lists. The fields need not be granted. A null ' +
      'value matches no comparison. Omitted: every row.',
  })
  rowFilter?: Record<string, unknown> | null;
  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description:
      "Release only the records of subjects who consented to the purpose (the dataset's subject field " +
      'is checked against recorded consent). Needs a dataset with a subject field.',
  })
  requireConsent?: boolean | null;
  @Field(() => Int, {
    nullable: true,
    defaultValue: 11,
    description:
      'The smallest count an aggregate may show (1 to 1000, default 11); smaller groups are left out or ' +
      'suppressed.',
  })
  minCellSize?: number | null;
  @Field(() => Boolean, {
    nullable: true,
    defaultValue: false,
    description:
      "Release the linkage pseudonym personKey (the same person's key across the recipient's datasets for " +
      'the purpose) and allow linked counts and counts of persons. Needs oversight.',
  })
  linkage?: boolean | null;
}

@InputType({
  description:
    'The terms of an agreement version. Proposing creates version 1; amending creates the next version, ' +
    'which must be approved again.',
})
export class AgreementInput {
  @Field({ description: 'A title both parties recognise.' }) title!: string;
  @Field(() => ID, { description: 'The agency that shares its datasets; an amendment keeps it.' })
  providerAgencyId!: string;
  @Field(() => ID, {
    description:
      'The agency that receives them; another agency, never an oversight agency. An amendment keeps it.',
  })
  recipientAgencyId!: string;
  @Field(() => [String], {
    description: 'The purpose codes the data may be used for (defined purposes, at least one).',
  })
  purposes!: string[];
  @Field(() => DateTimeScalar, { description: 'When access may start.' }) validFrom!: Date;
  @Field(() => DateTimeScalar, { description: 'When access stops; after validFrom.' }) validUntil!: Date;
  @Field(() => Int, {
    nullable: true,
    description:
      'Days within which the recipient must destroy what it received; the public register lists ' +
      'releases past it not yet attested as destroyed.',
  })
  retentionDays?: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The law, order or consent that allows the sharing; shown on the public register.',
  })
  legalBasis?: string | null;
  @Field(() => String, {
    nullable: true,
    description: 'Conditions the recipient accepts on the use of the data.',
  })
  termsOfUse?: string | null;
  @Field(() => String, {
    nullable: true,
    description:
      'Who in the community gains, and how; required where the version needs oversight, and shown on the ' +
      'public register.',
  })
  communityBenefit?: string | null;
  @Field(() => [GrantInput], { description: "The datasets granted, one grant each; all the provider's." })
  grants!: GrantInput[];
}
