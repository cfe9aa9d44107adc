import { Field, GraphQLISODateTime, ID, Int, ObjectType } from '@nestjs/graphql';
import { AgencyModel } from '@broker/registry';

/**
 * One data request that released at least one row of a subject (action QUERY): when, to which
 * agency, for which purpose, under which agreement version, and the released names it returned.
 * Aggregates release no rows and are not listed.
 */
@ObjectType('SubjectAccess')
export class SubjectAccessModel {
  @Field(() => GraphQLISODateTime) at!: Date;
  @Field(() => AgencyModel) agency?: AgencyModel;
  agencyId!: string;
  @Field() purpose!: string;
  @Field(() => ID) agreementId!: string;
  @Field(() => Int) agreementVersion!: number;
  @Field() action!: string;
  @Field(() => [String]) fields!: string[];
}
