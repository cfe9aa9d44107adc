import { Args, Int, Query, Resolver } from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AuditEventConnectionModel, AuditEventModel, AuditVerificationModel } from './audit-event.model';
import { AuditFilter } from './audit-filter.input';
import { AuditService } from './audit.service';

@Resolver(() => AuditEventModel)
export class AuditResolver {
  constructor(private readonly audit: AuditService) {}

  /** Every role: the service narrows the log, in SQL, to what the caller may see. Newest first. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => AuditEventConnectionModel)
  auditEvents(
    @Ctx() ctx: RequestContext,
    @Args('filter', { type: () => AuditFilter, nullable: true }) filter: AuditFilter | null,
    @Args('first', { type: () => Int, nullable: true, defaultValue: 100 }) first: number | null,
    @Args('after', { type: () => String, nullable: true }) after: string | null,
  ) {
    return this.audit.list(ctx, filter, first, after);
  }

  @Allow(Role.OPERATOR, Role.STEWARD, Role.AUDITOR)
  @Query(() => AuditVerificationModel)
  verifyAuditChain(@Ctx() ctx: RequestContext) {
    return this.audit.verify(ctx);
  }
}
