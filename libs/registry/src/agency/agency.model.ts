import { Field, ID, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';

/** A county agency: a party to agreements, owner of datasets. */
@ObjectType('Agency', { description: 'A county agency: a party to agreements, owner of datasets.' })
export class AgencyModel {
  @Field(() => ID, { description: 'The agency id.' }) id!: string;
  @Field({ description: 'The agency name, unique.' }) name!: string;
  @Field(() => String, {
    nullable: true,
    description: 'What kind of agency (e.g. `cbo`, `research`, `oversight`).',
  })
  kind!: string | null;
  @Field(() => DateTimeScalar, { description: 'When the operator created it.' }) createdAt!: Date;
}
