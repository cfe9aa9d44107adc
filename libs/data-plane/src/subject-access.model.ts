import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { AgencyModel } from '@broker/registry';

/**
 * One data request that released at least one row of a subject (action QUERY): when, to which
 * agency, for which purpose, under which agreement version, and the released names it returned.
 * Aggregates release no rows and are not listed.
 */
@ObjectType('SubjectAccess', {
  description: 'One data request that released at least one row of a subject; aggregates are not listed.',
})
export class SubjectAccessModel {
  @Field(() => DateTimeScalar, { description: 'When the rows were released.' }) at!: Date;
  @Field(() => AgencyModel, { description: 'The recipient agency.' }) agency?: AgencyModel;
  agencyId!: string;
  @Field({ description: 'The purpose the request named.' }) purpose!: string;
  @Field(() => ID, { description: 'The agreement it was answered under.' }) agreementId!: string;
  @Field(() => Int, { description: 'The version of that agreement in force.' }) agreementVersion!: number;
  @Field({ description: 'What released the rows: QUERY, a page of rows.' }) action!: string;
  @Field(() => [String], { description: 'The released names it returned.' }) fields!: string[];
}
