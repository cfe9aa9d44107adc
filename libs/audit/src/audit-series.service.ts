import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { RequestContext } from '@broker/auth';
import { badInput } from '@broker/core';
import { AuditAction } from './audit-action.enum';
import type { AccessCountModel, RefusalCountModel } from './audit-series.model';
import { REFUSAL_COUNT_SQL, REFUSAL_PLANE_SQL } from './refusal-plane';
import { type VisibilityTables, auditVisibility } from './audit-visibility';

const DAY_MS = 86_400_000;
/** The window `auditAccessSeries` covers when `from` is not given. */
export const ACCESS_SERIES_DEFAULT_DAYS = 30;
/** The longest window one `auditAccessSeries` request may cover. */
export const ACCESS_SERIES_MAX_DAYS = 366;

/**
 * Data requests per agreement per day, counted in SQL over the audit events the caller may read
 * (the same visibility as `auditEvents`): what oversight charts without paging through the log.
 */
@Injectable()
export class AuditSeriesService {
  private agreementsTable = false;

  constructor(private readonly dataSource: DataSource) {}

  /** Counts in `[from, to)`; `to` defaults to now, `from` to {@link ACCESS_SERIES_DEFAULT_DAYS} days before it. */
  async accessSeries(
    ctx: RequestContext,
    from: Date | null | undefined,
    to: Date | null | undefined,
  ): Promise<AccessCountModel[]> {
    const { start, end } = seriesWindow(from, to);
    const visibility = auditVisibility(ctx.principal, await this.visibilityTables());
    const rows = await this.dataSource
      .createQueryBuilder()
      .select('e.agreement_id', 'agreementId')
      .addSelect(`to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`, 'day')
      .addSelect(`count(*) FILTER (WHERE e.decision = 'ALLOW')::int`, 'allowed')
      .addSelect(`coalesce(sum(${REFUSAL_COUNT_SQL}) FILTER (WHERE e.decision = 'DENY'), 0)::int`, 'denied')
      .from('audit_event', 'e')
      .where(visibility.sql, visibility.params)
      .andWhere('e.action IN (:...accessActions)', {
        accessActions: [AuditAction.QUERY, AuditAction.AGGREGATE],
      })
      .andWhere('e.agreement_id IS NOT NULL')
      .andWhere('e.at >= :seriesFrom AND e.at < :seriesTo', { seriesFrom: start, seriesTo: end })
      .groupBy('1')
      .addGroupBy('2')
      .orderBy('2')
      .addOrderBy('1')
      .getRawMany<AccessCountModel>();
    return rows;
  }

  /**
   * Refused requests per UTC day in `[from, to)`, of both planes, attributed to who was refused
   * (user and agency) and why: every DENY event the caller may read, merged LIMIT refusals counted
   * one by one. Control-plane refusals name no agreement, so {@link accessSeries} cannot show them.
   */
  async refusalSeries(
    ctx: RequestContext,
    from: Date | null | undefined,
    to: Date | null | undefined,
  ): Promise<RefusalCountModel[]> {
    const { start, end } = seriesWindow(from, to);
    const visibility = auditVisibility(ctx.principal, await this.visibilityTables());
    return (
      this.dataSource
        .createQueryBuilder()
        .select(`to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`, 'day')
        .addSelect(REFUSAL_PLANE_SQL, 'plane')
        .addSelect('e.actor_agency_id', 'actorAgencyId')
        .addSelect('e.actor_user_id', 'actorUserId')
        .addSelect('e.reason', 'reason')
        .addSelect(`sum(${REFUSAL_COUNT_SQL})::int`, 'refusals')
        .addSelect('count(*)::int', 'events')
        .from('audit_event', 'e')
        .where(visibility.sql, visibility.params)
        .andWhere(`e.decision = 'DENY'`)
        .andWhere('e.at >= :seriesFrom AND e.at < :seriesTo', { seriesFrom: start, seriesTo: end })
        // By output names: the query builder reorders the select list, so positions would drift.
        .groupBy('"day"')
        .addGroupBy('"plane"')
        .addGroupBy('"actorAgencyId"')
        .addGroupBy('"actorUserId"')
        .addGroupBy('"reason"')
        .orderBy('"day"')
        .addOrderBy('"plane"')
        .addOrderBy('"actorAgencyId"', 'ASC', 'NULLS FIRST')
        .addOrderBy('"actorUserId"', 'ASC', 'NULLS FIRST')
        .addOrderBy('"reason"')
        .getRawMany<RefusalCountModel>()
    );
  }

  /** Whether the agreements table exists yet, as `AuditService` looks it up, for stewards' visibility. */
  private async visibilityTables(): Promise<VisibilityTables> {
    if (!this.agreementsTable) {
      const [row] = await this.dataSource.query<{ n: number }[]>(
        `SELECT count(*)::int AS n FROM pg_attribute
          WHERE attrelid = to_regclass('agreement') AND NOT attisdropped
            AND attname IN ('id', 'provider_agency_id', 'recipient_agency_id')`,
      );
      this.agreementsTable = row.n === 3;
    }
    return { agreements: this.agreementsTable };
  }
}

/** The window of a series: `to` defaults to now, `from` to {@link ACCESS_SERIES_DEFAULT_DAYS} days before it. */
function seriesWindow(
  from: Date | null | undefined,
  to: Date | null | undefined,
): { start: Date; end: Date } {
  const end = to ?? new Date();
  const start = from ?? new Date(end.getTime() - ACCESS_SERIES_DEFAULT_DAYS * DAY_MS);
  if (!(start < end)) throw badInput('from must be before to');
  if (end.getTime() - start.getTime() > ACCESS_SERIES_MAX_DAYS * DAY_MS) {
    throw badInput(`The window covers at most ${ACCESS_SERIES_MAX_DAYS} days`);
  }
  return { start, end };
}
