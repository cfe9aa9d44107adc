import { Field, ID, InputType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { AuditDecision } from './audit-action.enum';

/** Narrows `auditEvents`; every condition given must hold. It never widens what the caller may see. */
@InputType('AuditFilter', {
  description:
    'Narrows `auditEvents`; every condition given must hold. It never widens what the caller may see.',
})
export class AuditFilter {
  @Field(() => String, { nullable: true, description: 'Only events of this action.' }) action?: string | null;
  @Field(() => AuditDecision, { nullable: true, description: 'Only ALLOW or only DENY.' })
  decision?: AuditDecision | null;
  @Field(() => ID, { nullable: true, description: 'Only events about this dataset.' }) datasetId?:
    string | null;
  @Field(() => ID, { nullable: true, description: 'Only events about this agreement.' }) agreementId?:
    string | null;
  @Field(() => ID, { nullable: true, description: 'Only events of users of this agency.' }) actorAgencyId?:
    string | null;
  /** Events at or after this instant. */
  @Field(() => DateTimeScalar, { nullable: true, description: 'Events at or after this instant.' })
  from?: Date | null;
  /** Events strictly before this instant, so consecutive windows never overlap. */
  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'Events strictly before this instant, so consecutive windows never overlap.',
  })
  to?: Date | null;
}
