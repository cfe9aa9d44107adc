import { Field, ID, Int, ObjectType } from '@nestjs/graphql';

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
