import { Field, GraphQLISODateTime, ID, ObjectType } from '@nestjs/graphql';

/** A county agency: a party to agreements, owner of datasets. */
@ObjectType('Agency')
export class AgencyModel {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field(() => String, { nullable: true }) kind!: string | null;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
}
