import { Field, GraphQLISODateTime, ID, InputType, ObjectType } from '@nestjs/graphql';

@InputType()
export class ConsentInput {
  @Field(() => ID) datasetId!: string;
  /** The provider's own person id, as in the dataset's subject field. */
  @Field() subjectId!: string;
  /** A purpose code. */
  @Field() purpose!: string;
  @Field() granted!: boolean;
}

/** A subject's consent to one purpose for one dataset, as recorded; the latest record is in force. */
@ObjectType('Consent')
export class ConsentModel {
  @Field(() => ID) id!: string;
  @Field(() => ID) datasetId!: string;
  @Field() subjectId!: string;
  @Field() purpose!: string;
  @Field() granted!: boolean;
  @Field(() => GraphQLISODateTime) recordedAt!: Date;
}
