import { Args, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgencyModel } from '../agency/agency.model';
import { AgencyService } from '../agency/agency.service';
import { CreateUserInput } from './create-user.input';
import { CreatedUserModel, UserModel } from './user.model';
import { UserService } from './user.service';

@Resolver(() => UserModel)
export class UserResolver {
  constructor(
    private readonly users: UserService,
    private readonly agencies: AgencyService,
  ) {}

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => UserModel, { description: 'The signed-in user.' })
  me(@Ctx() ctx: RequestContext) {
    return this.users.me(ctx);
  }

  @Allow(Role.OPERATOR, Role.STEWARD)
  @Mutation(() => CreatedUserModel, {
    description:
      'Creates a user and its API key (OPERATOR: operators, auditors, a first steward; STEWARD: its agency).',
  })
  createUser(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The new user.' }) input: CreateUserInput,
  ) {
    return this.users.create(ctx, input);
  }

  @ResolveField(() => AgencyModel, {
    nullable: true,
    description: "The user's agency; null for an OPERATOR.",
  })
  agency(@Parent() user: UserModel) {
    return user.agencyId ? this.agencies.findById(user.agencyId) : null;
  }
}
