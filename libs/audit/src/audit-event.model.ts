import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { AuditDecision } from './audit-action.enum';
import { RequestPlane } from './refusal-plane';

/** One audit event as the control plane shows it; `details` stay internal. */
@ObjectType('AuditEvent', {
  description:
    'One event of the hash-chained audit log: who did what, allowed or denied, under which agreement.',
})
export class AuditEventModel {
  /** Position in the chain: 1, 2, 3, ... without gaps. */
  @Field(() => Int, { description: 'Position in the chain: 1, 2, 3, ... without gaps.' }) seq!: number;
  @Field(() => DateTimeScalar, { description: 'When it happened.' }) at!: Date;
  @Field(() => ID, { nullable: true, description: 'The user who acted; null for the system.' }) actorUserId!:
    string | null;
  @Field(() => ID, { nullable: true, description: "The acting user's agency." }) actorAgencyId!:
    string | null;
  /** QUERY, AGGREGATE, AGREEMENT_PROPOSED, DATASET_REGISTERED, ... */
  @Field({ description: 'QUERY, AGGREGATE, AGREEMENT_PROPOSED, DATASET_REGISTERED, ...' }) action!: string;
  @Field(() => AuditDecision, { description: 'ALLOW or DENY.' }) decision!: AuditDecision;
  @Field(() => String, {
    nullable: true,
    description: 'Why it was denied, or the reason given (revocation).',
  })
  reason!: string | null;
  @Field(() => String, { nullable: true, description: 'The purpose a data request named.' }) purpose!:
    string | null;
  @Field(() => ID, { nullable: true, description: 'The dataset concerned.' }) datasetId!: string | null;
  @Field(() => ID, { nullable: true, description: 'The agreement concerned.' }) agreementId!: string | null;
  @Field(() => Int, { nullable: true, description: 'The agreement version that governed it.' })
  agreementVersion!: number | null;
  /** Released field names; never values. */
  @Field(() => [String], {
    nullable: true,
    description: 'Released names asked for or returned; never values.',
  })
  fields!: string[] | null;
  @Field(() => Int, { nullable: true, description: 'Rows returned, records written or destroyed.' })
  rowCount!: number | null;
  @Field(() => RequestPlane, { nullable: true, description: 'For a DENY event: the plane that refused.' })
  plane!: RequestPlane | null;
  /** Above 1 where LIMIT refusals of one caller and minute were merged into one event. */
  @Field(() => Int, {
    nullable: true,
    description:
      'For a DENY event: the requests it records as refused (above 1 where LIMIT refusals of one caller and minute were merged).',
  })
  refusals!: number | null;
  /** Names only, never values. */
  @Field(() => [String], {
    nullable: true,
    description:
      'For a refused control-plane or REST request: the operations or route it asked (names only, never values).',
  })
  operations!: string[] | null;
  /** The hash of event seq - 1 (64 zeros for event 1). */
  @Field({ description: 'The hash of event seq - 1 (64 zeros for event 1).' }) prevHash!: string;
  /** sha256 hex of prevHash and this event's canonical JSON. */
  @Field({ description: "sha256 hex of prevHash and this event's canonical JSON." }) hash!: string;
}

/** Cursor pagination state, shared by every connection type of the broker. */
@ObjectType('PageInfo', { description: 'Where a page ends, to ask for the next one.' })
export class PageInfoModel {
  @Field({ description: 'Whether more items follow this page.' }) hasNextPage!: boolean;
  /** Pass as `after` to read the next page; null when the page is empty. */
  @Field(() => String, {
    nullable: true,
    description: 'Pass as `after` to read the next page; null when the page is empty.',
  })
  endCursor!: string | null;
}

/** A page of audit events, newest first. */
@ObjectType('AuditEventConnection', { description: 'A page of audit events, newest first.' })
export class AuditEventConnectionModel {
  @Field(() => [AuditEventModel], { description: 'The events of this page.' }) nodes!: AuditEventModel[];
  @Field(() => PageInfoModel, { description: 'Whether and where the next page starts.' })
  pageInfo!: PageInfoModel;
}

/** The outcome of `verifyAuditChain`. */
@ObjectType('AuditVerification', { description: 'The outcome of verifying the audit chain.' })
export class AuditVerificationModel {
  @Field({ description: 'Whether no event was changed, deleted, inserted or reordered.' }) valid!: boolean;
  /** Events found intact before the first break (all of them when valid). */
  @Field(() => Int, { description: 'Events found intact before the first break (all of them when valid).' })
  checked!: number;
  /** The lowest seq at which the log departs from an intact chain; null when valid. */
  @Field(() => Int, {
    nullable: true,
    description: 'The lowest seq at which the log departs from an intact chain; null when valid.',
  })
  firstBrokenSeq!: number | null;
}
