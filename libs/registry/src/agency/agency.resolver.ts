import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgencyModel } from './agency.model';
import { AgencyService } from './agency.service';
import { CreateAgencyInput } from './create-agency.input';

@Resolver(() => AgencyModel)
export class AgencyResolver {
  constructor(private readonly agencyService: AgencyService) {}

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => [AgencyModel], { description: 'Every agency (names are public within the broker).' })
  agencies(@Ctx() ctx: RequestContext) {
    return this.agencyService.list(ctx);
  }

  @Allow(Role.OPERATOR)
  @Mutation(() => AgencyModel, { description: 'Creates an agency (OPERATOR).' })
  createAgency(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The new agency.' }) input: CreateAgencyInput,
  ) {
    return this.agencyService.create(ctx, input);
  }
}
