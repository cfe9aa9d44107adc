import { Args, ID, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgencyModel, AgencyService } from '@broker/registry';
import { SubjectAccessModel } from './subject-access.model';
import { SubjectAccessService } from './subject-access.service';

@Resolver(() => SubjectAccessModel)
export class SubjectAccessResolver {
  constructor(
    private readonly reports: SubjectAccessService,
    private readonly agencies: AgencyService,
  ) {}

  /** Every release of a subject's rows, for a steward of the dataset's provider. */
  @Allow(Role.STEWARD)
  @Query(() => [SubjectAccessModel], {
    description:
      "Who received a subject's rows, when, why and under which agreement (STEWARD of the provider).",
  })
  subjectAccessReport(
    @Ctx() ctx: RequestContext,
    @Args('datasetId', { type: () => ID, description: 'The dataset (of your agency).' }) datasetId: string,
    @Args('subjectId', {
      description: "The provider's own person id, exactly as in the dataset's subject field (not trimmed).",
    })
    subjectId: string,
  ) {
    return this.reports.report(ctx, datasetId, subjectId);
  }

  @ResolveField(() => AgencyModel)
  agency(@Parent() access: SubjectAccessModel) {
    return this.agencies.findById(access.agencyId);
  }
}
