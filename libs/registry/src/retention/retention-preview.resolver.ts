import { Args, ID, Int, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { RetentionPreviewModel } from './retention-preview.model';
import { RetentionPreviewService } from './retention-preview.service';

@Resolver(() => RetentionPreviewModel)
export class RetentionPreviewResolver {
  constructor(private readonly previews: RetentionPreviewService) {}

  @Allow(Role.STEWARD)
  @Query(() => RetentionPreviewModel, {
    description:
      "What a retention of a dataset would destroy at the next daily run, counted now, beside what its current retention would; changes nothing. Who may call it is who may change the retention with updateDataset: a STEWARD of the provider (another agency's dataset is NOT_FOUND, as a missing one). The retention is checked as updateDataset checks it (BAD_USER_INPUT, nothing counted). A count that takes too long is refused (BAD_USER_INPUT, reason LIMIT).",
  })
  retentionPreview(
    @Ctx() ctx: RequestContext,
    @Args('datasetId', { type: () => ID, description: 'The dataset.' }) datasetId: string,
    @Args('retentionDays', {
      type: () => Int,
      nullable: true,
      description:
        'The proposed retention in days (1 to 36,500), with retentionField; 0 (as updateDataset reads it), or both left out (or null), previews removing retention.',
    })
    retentionDays?: number | null,
    @Args('retentionField', {
      type: () => String,
      nullable: true,
      description: 'The DATE or DATETIME field the proposed retention is measured from, with retentionDays.',
    })
    retentionField?: string | null,
  ) {
    return this.previews.preview(ctx, datasetId, { retentionDays, retentionField });
  }
}
