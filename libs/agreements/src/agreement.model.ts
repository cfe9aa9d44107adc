import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { FieldTransform, GrantAccess } from '@broker/policy';
import { AgencyModel, UserModel } from '@broker/registry';
import { AgreementStatus } from './agreement-status';

registerEnumType(FieldTransform, { name: 'FieldTransform' });
registerEnumType(GrantAccess, { name: 'GrantAccess' });

@ObjectType('Approval')
export class ApprovalModel {
  @Field(() => AgencyModel) agency?: AgencyModel;
  agencyId!: string;
  @Field(() => UserModel) user?: UserModel;
  userId!: string;
  @Field(() => GraphQLISODateTime) at!: Date;
}

/** An AUDITOR's decline of a version that needed oversight: that version never comes into force. */
@ObjectType('Decline')
export class DeclineModel {
  @Field(() => AgencyModel) agency?: AgencyModel;
  agencyId!: string;
  @Field(() => UserModel) user?: UserModel;
  userId!: string;
  @Field() reason!: string;
  @Field(() => GraphQLISODateTime) at!: Date;
}

/** One immutable version of an agreement; its hash covers its whole content. */
@ObjectType('AgreementVersion')
export class AgreementVersionModel {
  @Field(() => Int) version!: number;
  @Field() hash!: string;
  @Field(() => GraphQLJSONObject) content!: Record<string, unknown>;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  /** Approvals of the parties and, where oversight is required, of an oversight agency. */
  @Field(() => [ApprovalModel]) approvals!: ApprovalModel[];
  /** This version needs an AUDITOR's approval besides both parties'. */
  @Field() oversightRequired!: boolean;
  @Field(() => DeclineModel, { nullable: true }) decline!: DeclineModel | null;
}

/** A data-sharing agreement between a provider and a recipient agency. */
@ObjectType('Agreement')
export class AgreementModel {
  @Field(() => ID) id!: string;
  /** Of the current version. */
  @Field() title!: string;
  @Field(() => AgreementStatus) status!: AgreementStatus;
  @Field(() => AgencyModel) provider?: AgencyModel;
  providerAgencyId!: string;
  @Field(() => AgencyModel) recipient?: AgencyModel;
  recipientAgencyId!: string;
  @Field(() => Int) currentVersion!: number;
  /** The latest version both parties approved; null while none is. */
  @Field(() => Int, { nullable: true }) inForceVersion!: number | null;
  /** Of the current version. */
  @Field(() => [String]) purposes!: string[];
  @Field(() => GraphQLISODateTime) validFrom!: Date;
  @Field(() => GraphQLISODateTime) validUntil!: Date;
  @Field(() => GraphQLISODateTime, { nullable: true }) revokedAt!: Date | null;
  @Field(() => String, { nullable: true }) revokeReason!: string | null;
  @Field(() => [AgreementVersionModel]) versions!: AgreementVersionModel[];
  /** Of the current version: it needs an AUDITOR's approval besides both parties'. */
  @Field() oversightRequired!: boolean;
  /** The version in force, or the last one that was. */
  @Field(() => AgreementVersionModel, { nullable: true }) inForce!: AgreementVersionModel | null;
  /** The recipient's latest attestation that rows released up to then are destroyed. */
  @Field(() => GraphQLISODateTime, { nullable: true }) destructionAttestedThrough!: Date | null;
}

@InputType()
export class FieldGrantInput {
  @Field() name!: string;
  @Field(() => FieldTransform, { defaultValue: FieldTransform.RAW }) transform?: FieldTransform;
  /** Why the purpose needs this field at this precision. */
  @Field(() => String, { nullable: true }) justification?: string | null;
}

@InputType()
export class GrantInput {
  @Field(() => ID) datasetId!: string;
  @Field(() => GrantAccess, { defaultValue: GrantAccess.ROWS }) access?: GrantAccess;
  @Field(() => [FieldGrantInput]) fields!: FieldGrantInput[];
  /** Conditions on the dataset's raw fields: {"f": v}, $eq $ne $gt $gte $lt $lte $in $nin, $and, $or. */
  @Field(() => GraphQLJSONObject, { nullable: true }) rowFilter?: Record<string, unknown> | null;
  @Field(() => Boolean, { defaultValue: false }) requireConsent?: boolean;
  @Field(() => Int, { defaultValue: 11 }) minCellSize?: number;
  /** Release personKey. */
  @Field(() => Boolean, { defaultValue: false }) linkage?: boolean;
}

@InputType()
export class AgreementInput {
  @Field() title!: string;
  @Field(() => ID) providerAgencyId!: string;
  @Field(() => ID) recipientAgencyId!: string;
  /** Purpose codes. */
  @Field(() => [String]) purposes!: string[];
  @Field(() => GraphQLISODateTime) validFrom!: Date;
  @Field(() => GraphQLISODateTime) validUntil!: Date;
  @Field(() => Int, { nullable: true }) retentionDays?: number | null;
  @Field(() => String, { nullable: true }) legalBasis?: string | null;
  @Field(() => String, { nullable: true }) termsOfUse?: string | null;
  /** Who in the community gains, and how; required where oversight is. */
  @Field(() => String, { nullable: true }) communityBenefit?: string | null;
  /** Datasets must belong to the provider. */
  @Field(() => [GrantInput]) grants!: GrantInput[];
}
