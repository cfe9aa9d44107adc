import { Field, GraphQLISODateTime, ID, InputType, ObjectType } from '@nestjs/graphql';

/** A reason for using data, such as RECIDIVISM_EVALUATION; every data request names one. */
@ObjectType('Purpose')
export class PurposeModel {
  @Field(() => ID) id!: string;
  @Field() code!: string;
  @Field() description!: string;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
}

@InputType()
export class DefinePurposeInput {
  /** `^[A-Z][A-Z0-9_]{2,63}$` */
  @Field() code!: string;
  @Field() description!: string;
}
