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
  @Query(() => UserModel)
  me(@Ctx() ctx: RequestContext) {
    return this.userService.me(ctx);
  }

  /** STEWARD: its agency's users; OPERATOR and AUDITOR: every user. Never a key or its hash. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Query(() => [UserModel])
  users(@Ctx() ctx: RequestContext) {
    return this.userService.list(ctx);
  }

  @Allow(Role.OPERATOR, Role.STEWARD)
  @Mutation(() => CreatedUserModel)
  createUser(@Ctx() ctx: RequestContext, @Args('input') input: CreateUserInput) {
    return this.userService.create(ctx, input);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Mutation(() => UserModel)
  deactivateUser(@Ctx() ctx: RequestContext, @Args('id', { type: () => ID }) id: string) {
    return this.userService.deactivate(ctx, id);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @AllowInvitation()
  @Mutation(() => CreatedUserModel)
  rotateApiKey(@Ctx() ctx: RequestContext) {
    return this.userService.rotateKey(ctx);
  }

  @ResolveField(() => AgencyModel, { nullable: true })
  agency(@Parent() user: UserModel) {
    return user.agencyId ? this.agencies.findById(user.agencyId) : null;
  }

  @ResolveField(() => Boolean)
  active(@Parent() user: UserModel) {
    return user.deactivatedAt == null;
  }

  @ResolveField(() => Boolean)
  invitationPending(@Parent() user: UserModel & { invitationPending?: boolean }) {
    return typeof user.invitationPending === 'boolean'
      ? user.invitationPending
      : this.userService.invitationPending(user.id);
  }
}
