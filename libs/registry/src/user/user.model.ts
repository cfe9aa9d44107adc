import { Field, ID, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { Role } from '@broker/auth';
import { AgencyModel } from '../agency/agency.model';

/** A person with an API key. */
@ObjectType('User', {
  description: 'A person with an API key (never shown but once, at creation or rotation).',
})
export class UserModel {
  @Field(() => ID, { description: 'The user id.' }) id!: string;
  @Field({ description: 'E-mail address, unique within the agency.' }) email!: string;
  @Field(() => String, { nullable: true, description: 'The name shown for the user.' }) displayName!:
    string | null;
  @Field(() => Role, { description: 'What the user may do.' }) role!: Role;
  /** Resolved by a field resolver from `agencyId`. */
  @Field(() => AgencyModel, { nullable: true, description: "The user's agency; null for an OPERATOR." })
  agency?: AgencyModel | null;
  agencyId!: string | null;
  @Field(() => DateTimeScalar, { description: 'When the user was created.' }) createdAt!: Date;
  /** When the user was deactivated; its keys stopped then. */
  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'When the user was deactivated; its keys stopped then. Null while active.',
  })
  deactivatedAt!: Date | null;
  /** Not deactivated (resolved from `deactivatedAt`). */
  active?: boolean;
  /** Its key is an invitation the operator created, not yet rotated by its owner (resolved). */
  invitationPending?: boolean;
}

/** A new user and its API key; the key is shown this once and stored only as a hash. */
@ObjectType('CreatedUser', { description: 'A new user and its API key, shown this once.' })
export class CreatedUserModel {
  @Field(() => UserModel, { description: 'The user.' }) user!: UserModel;
  @Field({ description: 'Its API key, to send as `Authorization: Bearer <key>`; stored only as a hash.' })
  apiKey!: string;
}
