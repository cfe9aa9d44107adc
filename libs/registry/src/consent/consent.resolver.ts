import { Args, Mutation, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { ConsentInput, ConsentModel } from './consent.model';
import { ConsentService } from './consent.service';

@Resolver(() => ConsentModel)
export class ConsentResolver {
  constructor(private readonly consents: ConsentService) {}

  @Allow(Role.STEWARD)
  @Mutation(() => ConsentModel, {
    description:
      "Records a subject's consent for a purpose (STEWARD of the provider); in force from the next request.",
  })
  recordConsent(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The consent.' }) input: ConsentInput,
  ) {
    return this.consents.record(ctx, input);
  }
}
