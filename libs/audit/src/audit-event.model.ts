import { Field, GraphQLISODateTime, ID, Int, ObjectType } from '@nestjs/graphql';
import { AuditDecision } from './audit-action.enum';

/** One audit event as the control plane shows it; `details` stay internal. */
@ObjectType('AuditEvent')
export class AuditEventModel {
  /** Position in the chain: 1, 2, 3, ... without gaps. */
  @Field(() => Int) seq!: number;
  @Field(() => GraphQLISODateTime) at!: Date;
  @Field(() => ID, { nullable: true }) actorUserId!: string | null;
  @Field(() => ID, { nullable: true }) actorAgencyId!: string | null;
  /** QUERY, AGGREGATE, AGREEMENT_PROPOSED, DATASET_REGISTERED, ... */
  @Field() action!: string;
  @Field(() => AuditDecision) decision!: AuditDecision;
  @Field(() => String, { nullable: true }) reason!: string | null;
  @Field(() => String, { nullable: true }) purpose!: string | null;
  @Field(() => ID, { nullable: true }) datasetId!: string | null;
  @Field(() => ID, { nullable: true }) agreementId!: string | null;
  @Field(() => Int, { nullable: true }) agreementVersion!: number | null;
  /** Released field names; never values. */
  @Field(() => [String], { nullable: true }) fields!: string[] | null;
  @Field(() => Int, { nullable: true }) rowCount!: number | null;
  /** The hash of event seq - 1 (64 zeros for event 1). */
  @Field() prevHash!: string;
  /** sha256 hex of prevHash and this event's canonical JSON. */
  @Field() hash!: string;
}

/** Cursor pagination state, shared by every connection type of the broker. */
@ObjectType('PageInfo')
export class PageInfoModel {
  @Field() hasNextPage!: boolean;
  /** Pass as `after` to read the next page; null when the page is empty. */
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

/** A page of audit events, newest first. */
@ObjectType('AuditEventConnection')
export class AuditEventConnectionModel {
  @Field(() => [AuditEventModel]) nodes!: AuditEventModel[];
  @Field(() => PageInfoModel) pageInfo!: PageInfoModel;
}

/** The outcome of `verifyAuditChain`. */
@ObjectType('AuditVerification')
export class AuditVerificationModel {
  @Field() valid!: boolean;
  /** Events found intact before the first break (all of them when valid). */
  @Field(() => Int) checked!: number;
  /** The lowest seq at which the log departs from an intact chain; null when valid. */
  @Field(() => Int, { nullable: true }) firstBrokenSeq!: number | null;
}
