import { Args, Query, Resolver } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AccessCountModel, RefusalCountModel } from './audit-series.model';
import { AuditSeriesService } from './audit-series.service';

/** The window of a series, the same for every series. */
const FROM = { type: () => DateTimeScalar, nullable: true, description: 'The first instant counted.' };
const TO = {
  type: () => DateTimeScalar,
  nullable: true,
  description: 'Counted strictly before this instant.',
};

@Resolver()
export class AuditSeriesResolver {
  constructor(private readonly series: AuditSeriesService) {}

  /** Every role, like `auditEvents`: each counts only the events it may read. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => [AccessCountModel], {
    description:
      'Data requests (QUERY, AGGREGATE) per agreement per UTC day in [from, to), allowed and denied, over ' +
      'the audit events the caller may read. Defaults: the 30 days before now; at most 366 days.',
  })
  auditAccessSeries(
    @Ctx() ctx: RequestContext,
    @Args('from', FROM) from: Date | null,
    @Args('to', TO) to: Date | null,
  ) {
    return this.series.accessSeries(ctx, from, to);
  }

  /** Every role, like `auditEvents`: each counts only the events it may read. */
  @Allow(Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR)
  @Query(() => [RefusalCountModel], {
    description:
      'Refused requests of both planes per UTC day in [from, to), per refused user, plane and reason, ' +
      'over the audit events the caller may read (merged LIMIT refusals counted one by one). Defaults: ' +
      'the 30 days before now; at most 366 days.',
  })
  auditRefusalSeries(
    @Ctx() ctx: RequestContext,
    @Args('from', FROM) from: Date | null,
    @Args('to', TO) to: Date | null,
  ) {
    return this.series.refusalSeries(ctx, from, to);
  }
}
