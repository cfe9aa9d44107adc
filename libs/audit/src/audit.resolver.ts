import { Args, Int, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AuditEventConnectionModel, AuditEventModel, AuditVerificationModel } from './audit-event.model';
import { AuditFilter } from './audit-filter.input';
import { AuditHeadInput } from './audit-head.input';
import { AuditService } from './audit.service';

@Resolver(() => AuditEventModel)
export class AuditResolver {
  constructor(private readonly audit: AuditService) {}

  /** Every role: the service narrows the log, in SQL, to what the caller may see. Newest first. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => AuditEventConnectionModel, {
    description:
      'The audit log, newest first, as far as the caller may see it (AUDITOR all; STEWARD its agency).',
  })
  auditEvents(
    @Ctx() ctx: RequestContext,
    @Args('filter', {
      type: () => AuditFilter,
      nullable: true,
      description: 'Conditions that narrow the events.',
    })
    filter: AuditFilter | null,
    @Args('first', {
      type: () => Int,
      nullable: true,
      defaultValue: 100,
      description: 'How many events at most.',
    })
    first: number | null,
    @Args('after', {
      type: () => String,
      nullable: true,
      description: "The previous page's `pageInfo.endCursor`.",
    })
    after: string | null,
  ) {
    return this.audit.list(ctx, filter, first, after);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Query(() => AuditVerificationModel, {
    description:
      'Recomputes the hash chain and reports the first changed, deleted, inserted or reordered event.',
  })
  verifyAuditChain(
    @Ctx() ctx: RequestContext,
    @Args('knownHeads', {
      type: () => [AuditHeadInput],
      nullable: true,
      description:
        "Heads of the log written down earlier (the public register's `auditHead`): the log must still hold each one, so a tail cut off or a log resealed since then is found.",
    })
    knownHeads: AuditHeadInput[] | null,
  ) {
    return this.audit.verify(ctx, knownHeads);
  }
}
