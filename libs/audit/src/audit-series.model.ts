import { Field, ID, Int, ObjectType } from '@nestjs/graphql';

/** Data requests under one agreement on one day (UTC): how many were answered and how many refused. */
@ObjectType('AccessCount')
export class AccessCountModel {
  @Field(() => ID) agreementId!: string;
  /** 'YYYY-MM-DD', in UTC. */
  @Field() day!: string;
  @Field(() => Int) allowed!: number;
  @Field(() => Int) denied!: number;
}
