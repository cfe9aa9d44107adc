import { Args, ID, Int, Mutation, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { badInput, isUuid, notFound } from '@broker/core';
import { LinkageRunModel } from './linkage-run.model';
import { LinkagePairRecordModel, LinkageReviewPairModel } from './linkage-review.model';
import { LinkageReviewService } from './linkage-review.service';
import { LinkageService } from './linkage.service';

/** Linkage runs in the control plane: the operator runs them, the operator and auditors watch them. */
@Resolver(() => LinkageRunModel)
export class LinkageResolver {
  constructor(
    private readonly linkage: LinkageService,
    private readonly review: LinkageReviewService,
  ) {}

  @Allow(Role.OPERATOR, Role.AUDITOR)
  @Query(() => LinkageRunModel, {
    nullable: true,
    description: 'One linkage run, for the operator and auditors.',
  })
  async linkageRun(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The run id.' }) id: string,
  ) {
    // An unknown id is NOT_FOUND and a malformed one BAD_USER_INPUT, as for every other object.
    if (!isUuid(id)) throw badInput('id is not a valid id');
    const found = await this.linkage.get(ctx, id);
    if (!found) throw notFound('Linkage run');
    return found;
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

  @Allow(Role.OPERATOR, Role.AUDITOR, Role.STEWARD)
  @Query(() => [LinkageReviewPairModel], {
    description:
      "A run's pairs nearest its threshold, as comparison patterns (levels and weights, never a value). " +
      'A steward sees only the pairs both of whose records its agency holds (duplicates within the agency).',
  })
  linkageReviewPairs(
    @Ctx() ctx: RequestContext,
    @Args('runId', { type: () => ID, description: 'The run whose pairs to review.' }) runId: string,
  ) {
    return this.review.pairs(ctx, runId);
  }

  @Allow(Role.STEWARD)
  @Query(() => [LinkagePairRecordModel], {
    description:
      "The two records of a reviewed pair both of whose records the steward's agency holds; NOT_FOUND " +
      "for a pair with another agency's record, as for a pair that does not exist. Audited.",
  })
  linkageReviewPairSide(
    @Ctx() ctx: RequestContext,
    @Args('runId', { type: () => ID, description: 'The run.' }) runId: string,
    @Args('pair', { type: () => Int, description: "The pair's number within the run." }) pair: number,
  ) {
    return this.review.side(ctx, runId, pair);
  }

  @Allow(Role.OPERATOR, Role.STEWARD)
  @Mutation(() => LinkageReviewPairModel, {
    description:
      "Decides whether a reviewed pair's records are one person (a steward: only a pair both of whose records " +
      'its agency holds; NOT_FOUND otherwise). ' +
      'Kept across runs and applied by every later run; audited.',
  })
  decideLinkagePair(
    @Ctx() ctx: RequestContext,
    @Args('runId', { type: () => ID, description: 'The run that proposed the pair.' }) runId: string,
    @Args('pair', { type: () => Int, description: "The pair's number within the run." }) pair: number,
    @Args('same', {
      type: () => Boolean,
      description: 'true: the two records are one person; false: they are two. The latest decision stands.',
    })
    same: boolean,
  ) {
    return this.review.decide(ctx, runId, pair, same);
  }
}
