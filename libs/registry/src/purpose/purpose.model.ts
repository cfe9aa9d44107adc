import { Field, ID, InputType, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';

/** A reason for using data, such as RECIDIVISM_EVALUATION; every data request names one. */
@ObjectType('Purpose', {
  description: 'A reason for using data, such as RECIDIVISM_EVALUATION; every data request names one.',
})
export class PurposeModel {
  @Field(() => ID, { description: 'The purpose id.' }) id!: string;
  @Field({ description: 'Its code, named by agreements and data requests.' }) code!: string;
  @Field({ description: 'What the purpose is, in words.' }) description!: string;
  @Field(() => DateTimeScalar, { description: 'When the operator defined it.' }) createdAt!: Date;
}

@InputType({ description: 'A new purpose (operator only).' })
export class DefinePurposeInput {
  /** `^[A-Z][A-Z0-9_]{2,63}$` */
  @Field({ description: 'Its code: `^[A-Z][A-Z0-9_]{2,63}$`.' }) code!: string;
  @Field({ description: 'What the purpose is, in words.' }) description!: string;
}
