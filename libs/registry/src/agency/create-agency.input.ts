import { Field, InputType } from '@nestjs/graphql';

@InputType()
export class CreateAgencyInput {
  @Field() name!: string;
  @Field(() => String, { nullable: true }) kind?: string | null;
}
