import { Args, ID, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { LinkageRunModel } from './linkage-run.model';
import { LinkageService } from './linkage.service';

/** Linkage runs in the control plane: the operator runs them, the operator and auditors watch them. */
@Resolver(() => LinkageRunModel)
export class LinkageResolver {
  constructor(private readonly linkage: LinkageService) {}

  @Allow(Role.OPERATOR, Role.AUDITOR)
  @Query(() => LinkageRunModel, { nullable: true })
  linkageRun(@Ctx() ctx: RequestContext, @Args('id', { type: () => ID }) id: string) {
    return this.linkage.get(ctx, id);
  }

  @Allow(Role.OPERATOR, Role.AUDITOR)
  @Query(() => [LinkageRunModel], { description: 'Newest first.' })
  linkageRuns(@Ctx() ctx: RequestContext) {
    return this.linkage.list(ctx);
  }

  @Allow(Role.OPERATOR)
  @Mutation(() => LinkageRunModel, {
    description: 'Starts a run over every dataset with identity fields, or returns the one waiting to start.',
  })
  startLinkage(@Ctx() ctx: RequestContext) {
    return this.linkage.start(ctx);
  }
}
