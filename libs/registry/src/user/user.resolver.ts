import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { Allow, AllowInvitation, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgencyModel } from '../agency/agency.model';
import { AgencyService } from '../agency/agency.service';
import { CreateUserInput } from './create-user.input';
import { CreatedUserModel, UserModel } from './user.model';
import { UserService } from './user.service';

@Resolver(() => UserModel)
export class UserResolver {
  constructor(
    private readonly userService: UserService,
    private readonly agencies: AgencyService,
  ) {}

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @AllowInvitation()
  @Query(() => UserModel, { description: 'The signed-in user (an invitation may call it).' })
  me(@Ctx() ctx: RequestContext) {
    return this.userService.me(ctx);
  }

  /** STEWARD: its agency's users; OPERATOR and AUDITOR: every user. Never a key or its hash. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Query(() => [UserModel], {
    description: "STEWARD: its agency's users; OPERATOR and AUDITOR: every user. Never a key or its hash.",
  })
  users(@Ctx() ctx: RequestContext) {
    return this.userService.list(ctx);
  }

  @Allow(Role.OPERATOR, Role.STEWARD)
  @Mutation(() => CreatedUserModel, {
    description:
      'Creates a user and its API key (OPERATOR: operators, auditors, a first steward; STEWARD: its agency). A key the OPERATOR creates is an invitation.',
  })
  createUser(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The new user.' }) input: CreateUserInput,
  ) {
    return this.userService.create(ctx, input);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Mutation(() => UserModel, {
    description:
      "Deactivates a user: its keys stop on the next request (STEWARD: its agency's; AUDITOR: any STEWARD; OPERATOR: operators and auditors).",
  })
  deactivateUser(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The user.' }) id: string,
  ) {
    return this.userService.deactivate(ctx, id);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @AllowInvitation()
  @Mutation(() => CreatedUserModel, {
    description: "Replaces the caller's API key (the old one stops at once); accepts an invitation.",
  })
  rotateApiKey(@Ctx() ctx: RequestContext) {
    return this.userService.rotateKey(ctx);
  }

  @ResolveField(() => AgencyModel, {
    nullable: true,
    description: "The user's agency; null for an OPERATOR.",
  })
  agency(@Parent() user: UserModel) {
    return user.agencyId ? this.agencies.findById(user.agencyId) : null;
  }

  @ResolveField(() => Boolean, { description: 'Not deactivated: its key works.' })
  active(@Parent() user: UserModel) {
    return user.deactivatedAt == null;
  }

  @ResolveField(() => Boolean, {
    description: 'Its key is an invitation the OPERATOR created, not yet rotated by its owner.',
  })
  invitationPending(@Parent() user: UserModel & { invitationPending?: boolean }) {
    return typeof user.invitationPending === 'boolean'
      ? user.invitationPending
      : this.userService.invitationPending(user.id);
  }
}
