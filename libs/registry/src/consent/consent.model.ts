import { Field, ID, InputType, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';

/** A subject's consent, or its withdrawal. */
@InputType({ description: "A subject's consent to one purpose for one dataset, or its withdrawal." })
export class ConsentInput {
  @Field(() => ID, { description: 'The dataset (of your agency).' }) datasetId!: string;
  /** The provider's own person id, exactly as in the dataset's subject field: never trimmed. */
  @Field({
    description: "The provider's own person id, exactly as in the dataset's subject field (not trimmed).",
  })
  subjectId!: string;
  /** A purpose code. */
  @Field({ description: 'A purpose code.' }) purpose!: string;
  @Field({ description: 'true: consent given; false: refused or withdrawn.' }) granted!: boolean;
}

/** A subject's consent to one purpose for one dataset, as recorded; the latest record is in force. */
@ObjectType('Consent', {
  description:
    "A subject's consent to one purpose for one dataset, as recorded; the latest record is in force.",
})
export class ConsentModel {
  @Field(() => ID, { description: 'The record id.' }) id!: string;
  @Field(() => ID, { description: 'The dataset.' }) datasetId!: string;
  @Field({ description: "The provider's own person id." }) subjectId!: string;
  @Field({ description: 'The purpose code.' }) purpose!: string;
  @Field({ description: 'Whether consent is given.' }) granted!: boolean;
  @Field(() => DateTimeScalar, { description: 'When it was recorded.' }) recordedAt!: Date;
}
