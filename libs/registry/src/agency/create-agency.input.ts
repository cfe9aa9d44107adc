import { Field, InputType } from '@nestjs/graphql';

/** A new agency. */
@InputType({ description: 'A new agency (operator only).' })
export class CreateAgencyInput {
  @Field({ description: 'Its name, unique among agencies.' }) name!: string;
  @Field(() => String, {
    nullable: true,
    description: 'What kind of agency; `oversight` for the agency of AUDITORs, party to no agreement.',
  })
  kind?: string | null;
}
