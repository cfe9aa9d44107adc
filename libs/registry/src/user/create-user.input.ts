import { Field, ID, InputType } from '@nestjs/graphql';
import { Role } from '@broker/auth';

/** A new user. */
@InputType({ description: 'A new user; its API key is returned once.' })
export class CreateUserInput {
  @Field(() => ID, {
    nullable: true,
    description: "The user's agency; none for an OPERATOR, the oversight agency for an AUDITOR.",
  })
  agencyId?: string | null;
  @Field({ description: 'E-mail address, unique within the agency.' }) email!: string;
  @Field(() => String, { nullable: true, description: 'The name shown for the user.' }) displayName?:
    string | null;
  @Field(() => Role, { description: 'What the user may do.' }) role!: Role;
}
