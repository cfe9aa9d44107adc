import { Field, GraphQLISODateTime, ID, InputType } from '@nestjs/graphql';
import { AuditDecision } from './audit-action.enum';

/** Narrows `auditEvents`; every condition given must hold. It never widens what the caller may see. */
@InputType('AuditFilter')
export class AuditFilter {
  @Field(() => String, { nullable: true }) action?: string | null;
  @Field(() => AuditDecision, { nullable: true }) decision?: AuditDecision | null;
  @Field(() => ID, { nullable: true }) datasetId?: string | null;
  @Field(() => ID, { nullable: true }) agreementId?: string | null;
  @Field(() => ID, { nullable: true }) actorAgencyId?: string | null;
  /** Events at or after this instant. */
  @Field(() => GraphQLISODateTime, { nullable: true }) from?: Date | null;
  /** Events strictly before this instant, so consecutive windows never overlap. */
  @Field(() => GraphQLISODateTime, { nullable: true }) to?: Date | null;
}
