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

/** One immutable version of an agreement; its hash covers its whole content. */
@ObjectType('AgreementVersion')
export class AgreementVersionModel {
  @Field(() => Int) version!: number;
  @Field() hash!: string;
  @Field(() => GraphQLJSONObject) content!: Record<string, unknown>;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  @Field(() => [ApprovalModel]) approvals!: ApprovalModel[];
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
}

@InputType()
export class FieldGrantInput {
  @Field() name!: string;
  @Field(() => FieldTransform, { defaultValue: FieldTransform.RAW }) transform?: FieldTransform;
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
  /** Datasets must belong to the provider. */
  @Field(() => [GrantInput]) grants!: GrantInput[];
}
