import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import { RequestPlane } from './refusal-plane';

/** Data requests under one agreement on one day (UTC): how many were answered and how many refused. */
@ObjectType('AccessCount', {
  description:
    'Data requests under one agreement on one day (UTC): how many were answered and how many refused.',
})
export class AccessCountModel {
  @Field(() => ID, { description: 'The agreement.' }) agreementId!: string;
  /** 'YYYY-MM-DD', in UTC. */
  @Field({ description: "The day, 'YYYY-MM-DD' in UTC." }) day!: string;
  @Field(() => Int, { description: 'Requests answered.' }) allowed!: number;
  @Field(() => Int, { description: 'Requests refused.' }) denied!: number;
}

/** Requests of one user refused on one day (UTC), by one plane, for one reason. */
@ObjectType('RefusalCount', {
  description: 'Requests of one user refused on one day (UTC), by one plane, for one reason.',
})
export class RefusalCountModel {
  /** 'YYYY-MM-DD', in UTC. */
  @Field({ description: "The day, 'YYYY-MM-DD' in UTC." }) day!: string;
  @Field(() => RequestPlane, { description: 'The plane that refused.' }) plane!: RequestPlane;
  @Field(() => ID, { nullable: true, description: "The refused user's agency; null for an OPERATOR." })
  actorAgencyId!: string | null;
  @Field(() => ID, { nullable: true, description: 'The refused user.' }) actorUserId!: string | null;
  @Field(() => String, { nullable: true, description: "The refusal's reason (ROLE, NOT_PARTY, LIMIT, ...)." })
  reason!: string | null;
  @Field(() => Int, {
    description: 'Requests refused (merged LIMIT refusals counted one by one).',
  })
  refusals!: number;
  @Field(() => Int, { description: 'Audit events they are recorded in.' }) events!: number;
}
