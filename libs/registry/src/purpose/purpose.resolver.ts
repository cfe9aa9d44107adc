import { Args, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { DefinePurposeInput, PurposeModel } from './purpose.model';
import { PurposeService } from './purpose.service';

@Resolver(() => PurposeModel)
export class PurposeResolver {
  constructor(private readonly purposeService: PurposeService) {}

  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => [PurposeModel], { description: 'Every purpose the operator has defined.' })
  purposes(@Ctx() ctx: RequestContext) {
    return this.purposeService.list(ctx);
  }

  @Allow(Role.OPERATOR)
  @Mutation(() => PurposeModel, { description: 'Defines a purpose (OPERATOR).' })
  definePurpose(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The new purpose.' }) input: DefinePurposeInput,
  ) {
    return this.purposeService.define(ctx, input);
  }
}
