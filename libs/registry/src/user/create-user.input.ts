import { Field, ID, InputType } from '@nestjs/graphql';
import { Role } from '@broker/auth';

@InputType()
export class CreateUserInput {
  @Field(() => ID, { nullable: true }) agencyId?: string | null;
  @Field() email!: string;
  @Field(() => String, { nullable: true }) displayName?: string | null;
  @Field(() => Role) role!: Role;
}
