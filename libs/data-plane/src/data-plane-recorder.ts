import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import {
  AuditAction,
  AuditService,
  RefusalRecorder,
  type ReleaseCondition,
  releaseDigest,
} from '@broker/audit';
import type { RequestContext } from '@broker/auth';
import { BROKER_CONFIG, type BrokerConfig, LOGGER } from '@broker/core';
import {
  type AggregateBudget,
  type AggregateGroup,
  NOISE_BOUND,
  budgetSpent,
  whereFieldNames,
} from '@broker/policy';
import { AuditBatcher, type DataPlaneEvent } from './audit-batcher';
import type { DataPlaneRefusal, DataPlaneResponse, Plan } from './plan';
import { refusalResponse } from './response';
import { PurposeService } from '@broker/registry';

/** What an aggregate's statement returned, protected. */
export interface AggregateAnswer {
  kind: 'AGGREGATE';
  groups: AggregateGroup[];
  /** The bound of the perturbation: 0 for exact counts. */
  noise: number;
  rowCount: number;
}

/** What a page's release records: how many rows left, and which (their row ids as array text). */
export interface ReleasedRows {
  kind: 'ROWS';
  rowCount: number;
  rids: string | null;
  /** The digest of `rids` (see ReleaseDigest), where it was computed as the rows arrived. */
  releaseDigest?: string | null;
}

/** What a root field's statement returned, as its release records it. */
export type RootResult = ReleasedRows | AggregateAnswer;

/**
 * What the data plane records: every release (its audit events and the records it returned, in
 * group commits, before anything leaves), every refusal (a DENY event per refused part; repeated
 * LIMITs merged), and the daily aggregate budgets spent.
 */
@Injectable()
export class DataPlaneRecorder {
  /** Every event the data plane records, in group commits (see {@link AuditBatcher}). */
  private readonly auditLog: AuditBatcher;

  constructor(
    audit: AuditService,
    private readonly refusalRecorder: RefusalRecorder,
    private readonly dataSource: DataSource,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
    private readonly purposes: PurposeService,
  ) {
    this.auditLog = new AuditBatcher(audit);
  }

  /** Appends events in one group commit; resolves once they are durable. */
  append(events: DataPlaneEvent[]): Promise<void> {
    return this.auditLog.append(events);
  }

  /**
   * Counts perturbed aggregates of the request against the daily budgets of each agreement they use
   * (both sides of a linked count), before any statement of the request runs: the caller's own, and
   * the one all the recipient's analysts share. `due` is what {@link BudgetSpending.due} says the
   * request's decision needs beyond what it spent already. Past either budget the request is refused
   * with `LIMIT`, saying which, and nothing is read; otherwise what was spent is added to `spending`.
   * Spent first, so that a refusal past a budget takes the same time whatever the data (were the
   * statement run first, its time would go on answering, without limit, what the budget is there to
   * bound: see "Timing" in docs/disclosure-control.md); an aggregate whose statement then fails has
   * spent its unit. Exact aggregates and row pages cost nothing: they tell nothing the caller cannot
   * read.
   *
   * Both budgets are spent in one statement, atomically however many analysts and brokers race
   * them: the caller's rows first, as before (units past the caller's own budget stay counted there,
   * as refused attempts), then, only if all of the caller's are within it, the agreements' rows, each
   * by an upsert that leaves it as it is where it would go past the shared budget (so that it never
   * does, and an attempt it refuses costs the others nothing). Rows are taken in the order of their
   * agreement ids, so that two requests never wait on each other's rows in a cycle.
   */
  async spendBudget(
    ctx: RequestContext,
    due: ReadonlyMap<string, BudgetUse>,
    spending: BudgetSpending,
  ): Promise<DataPlaneRefusal[] | null> {
    if (!due.size) return null;
    const ids = [...due.keys()].sort();
    const weights = ids.map((id) => due.get(id)!.weight);
    const rows = await this.dataSource.query<
      { agreement_id: string; day: string; analyst: boolean; agreement: boolean }[]
    >(
      `WITH asked AS (
         SELECT a.agreement_id, a.units, (now() AT TIME ZONE 'UTC')::date AS day
           FROM unnest($2::uuid[], $3::int[]) AS a(agreement_id, units)
       ),
       analyst AS (
         INSERT INTO aggregate_budget AS b (user_id, agreement_id, day, used)
         SELECT $1, agreement_id, day, units FROM asked ORDER BY agreement_id
         ON CONFLICT (user_id, agreement_id, day) DO UPDATE SET used = b.used + excluded.used
         RETURNING b.agreement_id, b.day, b.used <= $4 AS within
       ),
       agreement AS (
         INSERT INTO aggregate_budget_agreement AS s (agreement_id, day, used)
         SELECT agreement_id, day, units FROM asked
          WHERE units <= $5 AND (SELECT bool_and(within) FROM analyst)
          ORDER BY agreement_id
         ON CONFLICT (agreement_id, day) DO UPDATE SET used = s.used + excluded.used
          WHERE s.used + excluded.used <= $5
         RETURNING s.agreement_id
       )
       SELECT a.agreement_id, a.day::text AS day, a.within AS analyst, s.agreement_id IS NOT NULL AS agreement
         FROM analyst a LEFT JOIN agreement s USING (agreement_id)`,
      [
        ctx.principal.userId,
        ids,
        weights,
        this.config.AGGREGATE_DAILY_BUDGET,
        this.config.AGGREGATE_AGREEMENT_DAILY_BUDGET,
      ],
    );
    const over = rows.find((row) => !row.analyst) ?? rows.find((row) => !row.agreement);
    if (!over) {
      for (const row of rows) spending.add(row.agreement_id, row.day, due.get(row.agreement_id)!.weight);
      return null;
    }
    const budget: AggregateBudget = over.analyst ? 'AGREEMENT' : 'ANALYST';
    // Past the shared budget, the request costs nothing: what it spent of its caller's own, and of
    // the agreements whose shared budget had room (another side of a linked count), goes back.
    if (budget === 'AGREEMENT') {
      await this.giveBack(
        ctx,
        rows.map((row) => {
          const units = due.get(row.agreement_id)!.weight;
          return {
            agreementId: row.agreement_id,
            day: row.day,
            analyst: units,
            agreement: row.agreement ? units : 0,
          };
        }),
      );
    }
    const plan = due.get(over.agreement_id)!.plan;
    return [
      {
        ...budgetSpent(budget),
        responseKey: plan.responseKey,
        audit: {
          action: AuditAction.AGGREGATE,
          purpose: plan.purpose,
          datasetId: plan.agreement.id === over.agreement_id ? plan.shape.id : plan.linked!.shape.id,
          agreementId: over.agreement_id,
          fields: [...plan.groupBy].sort(),
        },
      },
    ];
  }

  /**
   * Gives back units a request spent and no statement of it used (`units` by agreement, from
   * `spending`, which forgets them): its agreements changed between the spend and the decision it
   * was answered under, or that decision refused it. They go back to both budgets they were spent
   * from, the caller's and the agreement's shared one.
   */
  async refundBudget(
    ctx: RequestContext,
    spending: BudgetSpending,
    units: ReadonlyMap<string, number>,
  ): Promise<void> {
    const given = spending.giveBack(units);
    await this.giveBack(
      ctx,
      given.map((g) => ({ agreementId: g.agreementId, day: g.day, analyst: g.units, agreement: g.units })),
    );
  }

  /**
   * Takes units off the caller's budget (`analyst`) and off the agreement's shared one
   * (`agreement`), by agreement and day, in one statement. The rows are taken in the order
   * {@link spendBudget} takes them, the caller's first, then the agreements' by id, so that a
   * give-back and a spend never wait on each other in a cycle. A failure is logged, never answered:
   * the request was decided, and the budget errs on the side of having been spent.
   */
  private async giveBack(
    ctx: RequestContext,
    given: { agreementId: string; day: string; analyst: number; agreement: number }[],
  ): Promise<void> {
    if (!given.length) return;
    try {
      await this.dataSource.query(
        `WITH given AS (
           SELECT * FROM unnest($2::uuid[], $3::date[], $4::int[], $5::int[]) AS g(agreement_id, day, analyst, agreement)
         ),
         analyst AS (
           UPDATE aggregate_budget b SET used = greatest(b.used - g.analyst, 0)
             FROM given g
            WHERE b.user_id = $1 AND b.agreement_id = g.agreement_id AND b.day = g.day AND g.analyst > 0
           RETURNING b.agreement_id
         ),
         -- The agreements' rows locked in order, once the caller's are done (the count waits for them).
         agreement AS (
           SELECT s.agreement_id, s.day, g.agreement AS units
             FROM aggregate_budget_agreement s JOIN given g USING (agreement_id, day)
            WHERE g.agreement > 0 AND (SELECT count(*) FROM analyst) >= 0
            ORDER BY s.agreement_id
              FOR UPDATE OF s
         )
         UPDATE aggregate_budget_agreement s SET used = greatest(s.used - a.units, 0)
           FROM agreement a
          WHERE s.agreement_id = a.agreement_id AND s.day = a.day`,
        [
          ctx.principal.userId,
          given.map((g) => g.agreementId),
          given.map((g) => g.day),
          given.map((g) => g.analyst),
          given.map((g) => g.agreement),
        ],
      );
    } catch (error) {
      this.logger.error({ err: error, requestId: ctx.requestId }, 'aggregate budget could not be given back');
    }
  }

  /**
   * Records what the plans released, in one group commit, on the condition that it still holds when
   * the append runs (`onlyIf`: the policy stamp they were decided and read under, the key they were
   * read under, and their windows): rejects with ReleaseWithdrawnError, nothing recorded, when it
   * does not.
   */
  async recordReleases(
    ctx: RequestContext,
    plans: Plan[],
    results: Map<string, RootResult>,
    onlyIf: ReleaseCondition,
  ) {
    if (!plans.length) return;
    await this.auditLog.append(
      plans.flatMap((plan): DataPlaneEvent[] => {
        const result = results.get(plan.responseKey)!;
        const event: DataPlaneEvent = {
          actorUserId: ctx.principal.userId,
          actorAgencyId: ctx.principal.agencyId,
          action: plan.kind === 'AGGREGATE' ? AuditAction.AGGREGATE : AuditAction.QUERY,
          decision: 'ALLOW',
          purpose: plan.purpose,
          datasetId: plan.shape.id,
          agreementId: plan.agreement.id,
          agreementVersion: plan.agreement.version,
          fields: plan.kind === 'AGGREGATE' ? [...plan.groupBy].sort() : plan.fields,
          rowCount: result.rowCount,
          onlyIf,
        };
        if (result.kind === 'ROWS' && result.rids && result.rowCount > 0) {
          // Which records left, and their digest in the chain, which vouches for the stored list.
          event.release = { datasetId: plan.shape.id, rids: result.rids };
          event.details = { releaseDigest: result.releaseDigest ?? releaseDigest(result.rids) };
        }
        if (plan.kind !== 'AGGREGATE') return [event];
        event.details = {
          unit: plan.unit,
          noise: plan.exact ? 0 : NOISE_BOUND,
          ...(plan.linked ? { linked: plan.linked.shape.id } : {}),
        };
        if (!plan.linked) return [event];
        // Each side of a linked count is its own event under its own agreement, so each provider's
        // steward and the register see it.
        const other = plan.linked;
        const names = [...new Set([...whereFieldNames(other.where), ...(other.on ? [other.on] : [])])].sort();
        return [
          event,
          {
            ...event,
            datasetId: other.shape.id,
            agreementId: other.agreement.id,
            agreementVersion: other.agreement.version,
            fields: names,
            details: { unit: plan.unit, linkedFrom: plan.shape.id, exists: other.exists },
          },
        ];
      }),
    );
  }
  /**
   * Answers a refused request, after appending one DENY event per refused part: its reason, and
   * what was asked (ids, purpose, names; never filter values).
   */
  async refused(
    ctx: RequestContext,
    refusals: DataPlaneRefusal[],
    status = 200,
    action?: AuditAction,
  ): Promise<DataPlaneResponse> {
    // Limits merge per caller and minute, so a flood of refused requests is no flood of appends.
    // (A budget's LIMIT is about one agreement: recorded as its own event, under that agreement.)
    const mergeable = (r: DataPlaneRefusal) => r.reason === 'LIMIT' && !r.audit?.agreementId;
    const limits = refusals.filter(mergeable);
    const others = refusals.filter((r) => !mergeable(r));
    try {
      if (limits.length) {
        await this.refusalRecorder.record(
          ctx.principal,
          '/data/graphql',
          limits.map((r) => ({ code: r.code, reason: r.reason, message: r.message })),
          { operations: [], ids: [], action: action ?? AuditAction.QUERY },
        );
      }
      if (!others.length) return refusalResponse(refusals, status);
      this.refusalRecorder.count('/data/graphql', others);
      const defined = await this.definedPurposes(others);
      await this.auditLog.append(
        others.map((r) => {
          const { purposeAsked, ...asked } = r.audit ?? {};
          return {
            actorUserId: ctx.principal.userId,
            actorAgencyId: ctx.principal.agencyId,
            decision: 'DENY' as const,
            reason: r.reason,
            // The code, never the message: graphql-js's coercion messages quote the value refused,
            // which may be a filter value (an SSN searched for), and the chain would keep it for ever.
            details: { code: r.code },
            ...asked,
            ...(purposeAsked !== undefined && defined.has(purposeAsked) ? { purpose: purposeAsked } : {}),
            action: action ?? r.audit?.action ?? AuditAction.QUERY,
          };
        }),
      );
    } catch (error) {
      this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write of a denial failed');
    }
    return refusalResponse(refusals, status);
  }

  /**
   * The purposes the catalog defines, when a refusal asked for one the caller holds none of: a DENY
   * event records what was asked, and a defined purpose is public; anything else typed is not
   * recorded.
   */
  private async definedPurposes(refusals: DataPlaneRefusal[]): Promise<ReadonlySet<string>> {
    return refusals.some((r) => r.audit?.purposeAsked) ? this.purposes.codes() : new Set();
  }
}

/** What a request's perturbed aggregates spend of one agreement's budget, and one of them. */
export interface BudgetUse {
  weight: number;
  /** One of the plans that use it: a refusal past the budget names it. */
  plan: Plan;
}

/**
 * The perturbed aggregates of a request by agreement they count against (both sides of a linked
 * count): how many, and one of them (whose refusal names it).
 */
export function budgetUses(plans: Plan[]): Map<string, BudgetUse> {
  const uses = new Map<string, BudgetUse>();
  for (const plan of plans) {
    if (plan.kind !== 'AGGREGATE' || plan.exact) continue;
    for (const agreement of new Set([plan.agreement.id, plan.linked?.agreement.id])) {
      if (!agreement) continue;
      const use = uses.get(agreement);
      if (use) use.weight++;
      else uses.set(agreement, { weight: 1, plan });
    }
  }
  return uses;
}

/**
 * What one request has spent of the budget, by agreement (and the UTC day each unit was spent on),
 * while it is decided: the units a decision needs beyond it are spent before that decision runs
 * (DataPlaneService.handle), and units no decision that ran needed are given back, so that each
 * agreement is billed exactly the perturbed aggregates answered under it.
 */
export class BudgetSpending {
  private readonly spent: { agreementId: string; day: string; units: number }[] = [];
  /**
   * Units that statements of the request used, by agreement, where what they read was not released
   * (its release withdrawn, or its window closed, after the read: see {@link read}): never given
   * back, whatever the request ends with.
   */
  private readonly kept = new Map<string, number>();

  /** Records units spent on `day`. */
  add(agreementId: string, day: string, units: number): void {
    this.spent.push({ agreementId, day, units });
  }

  /** Units spent on an agreement, or on each. */
  unitsOf(agreementId: string): number {
    return this.spent.filter((s) => s.agreementId === agreementId).reduce((n, s) => n + s.units, 0);
  }

  /** The units of `plans`' perturbed aggregates not spent yet, by agreement (empty: all are). */
  due(plans: Plan[]): Map<string, BudgetUse> {
    const due = new Map<string, BudgetUse>();
    for (const [id, use] of budgetUses(plans)) {
      const missing = use.weight - this.unitsOf(id);
      if (missing > 0) due.set(id, { weight: missing, plan: use.plan });
    }
    return due;
  }

  /**
   * Records that `plans` ran (their statements read, and took the time they took) and that what
   * they read was not released, the request being decided again: the units they used are kept
   * whatever it ends with (refused, 401, 503). Its caller saw how long the statements took; were
   * the units given back, a caller who can have a release withdrawn at will (by rotating its own key
   * while its count runs) would time perturbed aggregates for free (see "Timing" in
   * docs/disclosure-control.md). Kept once, however many times the request is decided again: a
   * request answered at last under the same agreements is billed what it was answered with.
   */
  read(plans: Plan[]): void {
    for (const [id, use] of budgetUses(plans)) {
      this.kept.set(id, Math.max(this.kept.get(id) ?? 0, Math.min(use.weight, this.unitsOf(id))));
    }
  }

  /**
   * The units spent beyond what `plans` use, by agreement (all of them for no plans), less those
   * kept for statements that ran (see {@link read}).
   */
  excess(plans: Plan[]): Map<string, number> {
    const uses = budgetUses(plans);
    const excess = new Map<string, number>();
    for (const id of new Set(this.spent.map((s) => s.agreementId))) {
      const used = Math.max(uses.get(id)?.weight ?? 0, this.kept.get(id) ?? 0);
      const extra = this.unitsOf(id) - used;
      if (extra > 0) excess.set(id, extra);
    }
    return excess;
  }

  /** Forgets `units` by agreement (the latest spent first), and says which, on which day. */
  giveBack(units: ReadonlyMap<string, number>): { agreementId: string; day: string; units: number }[] {
    const given: { agreementId: string; day: string; units: number }[] = [];
    for (const [agreementId, wanted] of units) {
      let left = wanted;
      for (let i = this.spent.length - 1; i >= 0 && left > 0; i--) {
        const entry = this.spent[i];
        if (entry.agreementId !== agreementId) continue;
        const n = Math.min(entry.units, left);
        entry.units -= n;
        left -= n;
        const same = given.find((g) => g.agreementId === agreementId && g.day === entry.day);
        if (same) same.units += n;
        else given.push({ agreementId, day: entry.day, units: n });
      }
    }
    for (let i = this.spent.length - 1; i >= 0; i--) if (this.spent[i].units === 0) this.spent.splice(i, 1);
    return given;
  }
}
