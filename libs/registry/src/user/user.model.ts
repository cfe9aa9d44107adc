import { Field, GraphQLISODateTime, ID, ObjectType } from '@nestjs/graphql';
import { Role } from '@broker/auth';
import { AgencyModel } from '../agency/agency.model';

/** A person with an API key. */
@ObjectType('User')
export class UserModel {
  @Field(() => ID) id!: string;
  @Field() email!: string;
  @Field(() => String, { nullable: true }) displayName!: string | null;
  @Field(() => Role) role!: Role;
  /** Resolved by a field resolver from `agencyId`. */
  @Field(() => AgencyModel, { nullable: true }) agency?: AgencyModel | null;
  agencyId!: string | null;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  /** When the user was deactivated; its keys stopped then. */
  @Field(() => GraphQLISODateTime, { nullable: true }) deactivatedAt!: Date | null;
  /** Not deactivated (resolved from `deactivatedAt`). */
  active?: boolean;
  /** Its key is an invitation the operator created, not yet rotated by its owner (resolved). */
  invitationPending?: boolean;
}

/** A new user and its API key; the key is shown this once and stored only as a hash. */
@ObjectType('CreatedUser')
export class CreatedUserModel {
  @Field(() => UserModel) user!: UserModel;
  @Field() apiKey!: string;
}
