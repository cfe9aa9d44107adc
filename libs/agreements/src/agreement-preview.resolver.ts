import { Args, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgreementInput } from './agreement.model';
import { PurposePreviewModel } from './agreement-preview.model';
import { AgreementPreviewService } from './agreement-preview.service';

@Resolver(() => PurposePreviewModel)
export class AgreementPreviewResolver {
  constructor(private readonly previews: AgreementPreviewService) {}

  @Allow(Role.STEWARD, Role.AUDITOR)
  @Query(() => [PurposePreviewModel], {
    description:
      'What the recipient would see under each purpose, computed by the policy engine; validates as ' +
      'proposeAgreement does and changes nothing. STEWARD of either party; AUDITOR of an oversight ' +
      'agency, without record counts.',
  })
  previewAgreement(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The terms to preview, as they would be proposed or amended.' })
    input: AgreementInput,
  ) {
    return this.previews.preview(ctx, input);
  }
}
