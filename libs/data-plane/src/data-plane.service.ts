import { Inject, Injectable } from '@nestjs/common';
import { defaultFieldResolver, execute } from 'graphql';
import type { Logger } from 'pino';
import { Readable } from 'node:stream';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService, RefusalRecorder } from '@broker/audit';
import { AuthService, type RequestContext } from '@broker/auth';
import { createHash } from 'node:crypto';
import {
  BROKER_CONFIG,
  type BrokerConfig,
  Database,
  LOGGER,
  MetricsService,
  type Transaction,
} from '@broker/core';
import {
  type AggregateGroup,
  type AggregateRow,
  NOISE_BOUND,
  PolicyError,
  checkBudget,
  perturbedGroups,
  protectedGroups,
  refusal,
  refusalOf,
  whereFieldNames,
} from '@broker/policy';
import { aggregateSql } from './aggregate';
import { AuditBatcher, type DataPlaneEvent } from './audit-batcher';
import { precheck } from './authorise';
import { type Decision, decideRequest } from './decide';
import { sealCursor } from './cursor';
import { EXPORT_CURSOR, type ExportFormat, exportSql } from './export-sql';
import { pageSql } from './page-sql';
import type { DataPlaneRefusal, DataPlaneRequest, DataPlaneResponse, Plan } from './plan';
import { type CallerPolicy, PolicyCache } from './policy-cache.service';
import { DocumentCache } from './request-analysis';
import {
  type PageResult,
  failureResponse,
  invalidResponse,
  orderRefusals,
  refusalResponse,
  spliceResponse,
  unauthenticatedResponse,
} from './response';

/** What an aggregate's statement returned, protected. */
interface AggregateAnswer {
  kind: 'AGGREGATE';
  groups: AggregateGroup[];
  /** The bound of the perturbation: 0 for exact counts. */
  noise: number;
  rowCount: number;
}

type RootResult = PageResult | AggregateAnswer;

export { type DataPlaneRequest, type DataPlaneResponse, type Plan } from './plan';
export { pageSql } from './page-sql';
export { precheck } from './authorise';
export { type Decision } from './decide';

/** What an export answers: a JSON refusal or failure, or its rows as a stream. */
export type ExportResponse =
  | { kind: 'json'; response: DataPlaneResponse }
  | { kind: 'stream'; contentType: string; rowCount: number; stream: Readable };

/** Rows fetched from an export's cursor per round trip: about a megabyte of lines, whatever the total. */
const EXPORT_BATCH = 5_000;

/**
 * The data plane: answers a GraphQL request only within what the caller's active agreements grant
 * for the purpose it names. Every root field is authorised before anything runs; any refusal
 * answers `data: null`. Allowed reads are written to the audit log before their data leaves; if that
 * write fails, nothing leaves.
 */
@Injectable()
export class DataPlaneService {
  private readonly documents = new DocumentCache();
  /** Every event the data plane records, in group commits (see {@link AuditBatcher}). */
  private readonly auditLog: AuditBatcher;

  constructor(
    private readonly policies: PolicyCache,
    private readonly dataSource: DataSource,
    private readonly db: Database,
    audit: AuditService,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
    private readonly refusalRecorder: RefusalRecorder,
    private readonly auth: AuthService,
    private readonly metrics: MetricsService,
  ) {
    this.auditLog = new AuditBatcher(audit);
    if (!config.RECORD_RELEASES) {
      logger.warn(
        'RECORD_RELEASES=false: row releases are not recorded, so subject access reports miss them',
      );
    }
  }

  /** Answers one request. */
  async handle(ctx: RequestContext, request: DataPlaneRequest): Promise<DataPlaneResponse> {
    const early = precheck(ctx.principal, request);
    if (early) {
      if (!(await this.verify(ctx))) return this.unauthenticated();
      return early.refusals
        ? this.refused(ctx, early.refusals, early.status)
        : this.refused(ctx, [refusal('INVALID', early.message)], 400);
    }
    const alone = await this.answerAlone(ctx, request);
    if (alone) return alone;
    if (!(await this.verify(ctx))) return this.unauthenticated();
    const { tx, policy } = await this.begin(ctx.principal.agencyId!);
    let decision: Decision;
    try {
      decision = this.decide(policy, request);
    } catch (error) {
      await tx.rollback();
      throw error;
    }
    if (decision.kind === 'run') return this.answer(ctx, tx, decision);
    // Nothing runs: the snapshot is given back before the denial is written (on another connection).
    await tx.rollback();
    return decision.kind === 'invalid'
      ? this.refused(ctx, [refusal('INVALID', decision.message)], 400)
      : this.refused(ctx, decision.refusals, decision.status);
  }

  /**
   * The analyst's ordinary request, one row root field, in one round trip: decided under the policy
   * this instance last compiled for the caller's agency, and run as one statement (its own snapshot)
   * that also reads the policy stamp. The answer stands only if the stamp is the policy's, i.e. the
   * policy was current in the snapshot the rows come from; otherwise (an agreement changed, or a
   * refusal, which is decided under a stamp read first) it is undefined and the request takes the
   * path of {@link begin}. Nothing is released before it is recorded, as on that path.
   */
  private async answerAlone(
    ctx: RequestContext,
    request: DataPlaneRequest,
  ): Promise<DataPlaneResponse | undefined> {
    const agencyId = ctx.principal.agencyId!;
    const latest = this.policies.latest(agencyId, new Date());
    if (!latest) return undefined;
    const decision = this.decide(latest.policy, request);
    if (decision.kind !== 'run' || decision.plans.length !== 1 || decision.plans[0].kind !== 'ROWS') {
      return undefined;
    }
    const [plan] = decision.plans;
    let row: PageRow & { policy_stamp: string; key_works?: boolean };
    try {
      const { text, values } = pageSql(plan, this.config.RECORD_RELEASES, agencyId);
      // A remembered principal: its key is checked in the same snapshot as the rows.
      const param = (value: unknown, type: string) => `$${values.push(value)}::${type}`;
      const keyWorks = ctx.unverified ? `, ${this.auth.keyWorksSql(ctx.principal, param)} AS key_works` : '';
      [row] = await this.db.read<PageRow & { policy_stamp: string; key_works?: boolean }>(
        `SELECT (SELECT stamp FROM policy_stamp WHERE id = 1)::text AS policy_stamp${keyWorks}, page.*
           FROM (${text}) AS page`,
        values,
      );
    } catch (error) {
      // A refusal found while building the statement is decided again under a fresh stamp.
      if (error instanceof PolicyError) return undefined;
      throw error;
    }
    if (ctx.unverified) {
      // Nothing read under a key that stopped working is used; the caller is told so below.
      if (!row.key_works) {
        this.auth.forget(ctx.principal);
        return undefined;
      }
      ctx.unverified = false;
    }
    if (Number(row.policy_stamp) !== latest.stamp) return undefined;
    return this.release(ctx, decision, new Map([[plan.responseKey, pageResult(plan, row)]]), null);
  }

  /**
   * Whether the caller is who it says: true for a principal read from the database for this request;
   * a remembered one (see AuthService.remembered) is checked now, once, before anything is read or
   * recorded under it.
   */
  private async verify(ctx: RequestContext): Promise<boolean> {
    if (!ctx.unverified) return true;
    if (!(await this.auth.stillWorks(ctx.principal))) return false;
    ctx.unverified = false;
    return true;
  }

  /** The answer to a key that stopped working: 401, counted in metrics, not audited. */
  private unauthenticated(): DataPlaneResponse {
    this.metrics.unauthenticated.inc({ endpoint: '/data/graphql' });
    return unauthenticatedResponse();
  }

  /**
   * Begins the request's read-only snapshot and reads the policy stamp in the same round trip, so
   * an agreement changed through any instance is seen by the next request; returns the caller's
   * policy at that stamp. On a cache miss the connection is given back before the policy is loaded
   * (a request never waits for a second connection while it holds one) and the snapshot begun
   * again; the policy loaded then is at least as new as the request.
   */
  private async begin(agencyId: string): Promise<{ tx: Transaction; policy: CallerPolicy }> {
    let loaded: CallerPolicy | undefined;
    for (;;) {
      const tx = await this.db.begin(SNAPSHOT);
      const stamp = Number(tx.opening[0].stamp);
      const now = new Date();
      const policy = this.policies.cached(agencyId, stamp, now) ?? loaded;
      if (policy) return { tx, policy };
      await tx.rollback();
      loaded = await this.policies.reload(agencyId, now);
    }
  }

  /**
   * An export (`POST /data/export`): every row that the request's one row root field selects, under
   * the same decision as a page. In the request's snapshot, the rows are counted (and their ids kept
   * for the release record), the EXPORT event with the total is committed to the audit log, and only
   * then is the first byte streamed, from a cursor in the same snapshot, a batch at a time. A
   * refusal is the JSON refusal of `/data/graphql` with a 4xx status, audited as an EXPORT.
   */
  async export(
    ctx: RequestContext,
    request: DataPlaneRequest,
    format: ExportFormat,
  ): Promise<ExportResponse> {
    const refuse = async (refusals: DataPlaneRefusal[]): Promise<ExportResponse> => ({
      kind: 'json',
      response: await this.refused(ctx, refusals, exportStatus(refusals), AuditAction.EXPORT),
    });
    const invalid = (message: string): ExportResponse => ({
      kind: 'json',
      response: invalidResponse(message),
    });
    if (!(await this.verify(ctx))) return { kind: 'json', response: this.unauthenticated() };
    const early = precheck(ctx.principal, request);
    if (early) return early.refusals ? refuse(early.refusals) : invalid(early.message);
    const agencyId = ctx.principal.agencyId!;
    const { tx, policy } = await this.begin(agencyId);
    let decision: Decision;
    try {
      decision = this.decide(policy, request);
    } catch (error) {
      await tx.rollback();
      throw error;
    }
    if (decision.kind !== 'run') {
      await tx.rollback();
      return decision.kind === 'invalid' ? invalid(decision.message) : refuse(decision.refusals);
    }
    const [plan, ...more] = decision.plans;
    if (!plan || more.length || plan.kind !== 'ROWS') {
      await tx.rollback();
      return invalid('An export takes an operation with exactly one row root field');
    }
    let statements: ReturnType<typeof exportSql>;
    let counted: { n: number; rids?: string };
    try {
      statements = exportSql(plan, format, this.config.RECORD_RELEASES, agencyId);
      [counted] = await tx.query<{ n: number; rids?: string }>(
        statements.count.text,
        statements.count.values,
      );
    } catch (error) {
      await tx.rollback();
      if (error instanceof PolicyError) return refuse([refusalOf(error)]);
      throw error;
    }
    const event: DataPlaneEvent = {
      actorUserId: ctx.principal.userId,
      actorAgencyId: agencyId,
      action: AuditAction.EXPORT,
      decision: 'ALLOW',
      purpose: plan.purpose,
      datasetId: plan.shape.id,
      agreementId: plan.agreement.id,
      agreementVersion: plan.agreement.version,
      fields: plan.fields,
      rowCount: counted.n,
    };
    if (counted.rids && counted.n > 0) {
      event.release = { datasetId: plan.shape.id, rids: counted.rids };
      event.details = { releaseDigest: releaseDigest(counted.rids) };
    }
    try {
      await this.auditLog.append([event]);
      // The snapshot stays open: the rows streamed are the rows counted and recorded.
      await tx.query(
        `DECLARE ${EXPORT_CURSOR} NO SCROLL CURSOR FOR ${statements.rows.text}`,
        statements.rows.values,
      );
    } catch (error) {
      await tx.rollback();
      this.logger.error({ err: error, requestId: ctx.requestId }, 'export not started: nothing released');
      return {
        kind: 'json',
        response: failureResponse('The export could not be started, so nothing was released', 503),
      };
    }
    return {
      kind: 'stream',
      contentType: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      rowCount: counted.n,
      stream: exportStream(tx, statements.header, (error) =>
        this.logger.error(
          { err: error, requestId: ctx.requestId },
          'export failed midway: the stream was cut',
        ),
      ),
    };
  }

  /**
   * The in-process decision on a request that passed {@link precheck}, under the caller's policy
   * (see {@link decideRequest}). No I/O.
   */
  decide(policy: CallerPolicy, request: DataPlaneRequest): Decision {
    return decideRequest(this.documents, policy, request);
  }

  /** Runs the authorised plans, records the release, and only then answers with the data. */
  private async answer(
    ctx: RequestContext,
    tx: Transaction,
    decision: Extract<Decision, { kind: 'run' }>,
  ): Promise<DataPlaneResponse> {
    let results: Map<string, RootResult>;
    try {
      results = await this.run(tx, decision.plans, ctx.principal.agencyId!);
    } catch (error) {
      await tx.rollback();
      if (error instanceof PolicyError) return this.refused(ctx, [refusalOf(error)]);
      throw error;
    }
    // The read-only snapshot ends while the release is recorded: nothing it read depends on its COMMIT.
    return this.release(ctx, decision, results, tx.end('COMMIT'));
  }

  /**
   * Records the release of what the plans returned (their audit events, committed) and only then
   * answers with the data; `snapshotEnded` is the end of the snapshot they were read in, if one was
   * open.
   */
  private async release(
    ctx: RequestContext,
    decision: Extract<Decision, { kind: 'run' }>,
    results: Map<string, RootResult>,
    snapshotEnded: Promise<void> | null,
  ): Promise<DataPlaneResponse> {
    const { schema, document, operation, variableValues, plans, splice } = decision;
    const ended = snapshotEnded ?? Promise.resolve();
    const spent = await this.spendBudget(ctx, plans, ended);
    if (spent) return this.refused(ctx, spent);
    try {
      await this.recordReleases(ctx, plans, results);
    } catch (error) {
      await ended;
      this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write failed: no data released');
      // Unavailable, not failed: the caller may retry, and nothing left.
      return failureResponse('The access could not be recorded, so nothing was released', 503);
    }
    // Long done by now, as a rule: the connection is back in the pool before the answer leaves.
    await ended;

    if (splice) {
      // graphql-js would fail on a value its Float cannot represent: so does the splice.
      const pages = results as Map<string, PageResult>;
      if ([...pages.values()].some((r) => r.unrepresentable)) {
        return this.executionFailed(ctx, ['Float cannot represent a non-finite value']);
      }
      return { status: 200, json: spliceResponse(splice, pages) };
    }
    const queryType = schema.getQueryType();
    const result = await execute({
      schema,
      document,
      operationName: operation.name?.value ?? null,
      variableValues,
      rootValue: {},
      fieldResolver: (source, args, context, info) => {
        if (info.parentType !== queryType) return defaultFieldResolver(source, args, context, info);
        const result = results.get(String(info.path.key));
        if (!result) return undefined;
        if (result.kind === 'AGGREGATE') return { groups: result.groups, noise: result.noise };
        return { nodes: JSON.parse(result.nodesJson) as unknown[], pageInfo: result.pageInfo };
      },
    });
    if (result.errors?.length)
      return this.executionFailed(
        ctx,
        result.errors.map((e) => e.message),
      );
    return { status: 200, body: { data: result.data } };
  }

  /**
   * Counts every perturbed aggregate of the request against the caller's daily budget of each
   * agreement it uses (both sides of a linked count), once the snapshot has ended (it is read-only);
   * past the budget the request is refused with `LIMIT` and nothing leaves. Exact aggregates and
   * row pages cost nothing: they tell nothing the caller cannot read.
   */
  private async spendBudget(
    ctx: RequestContext,
    plans: Plan[],
    ended: Promise<void>,
  ): Promise<DataPlaneRefusal[] | null> {
    const spent = new Map<string, Plan>();
    for (const plan of plans) {
      if (plan.kind !== 'AGGREGATE' || plan.exact) continue;
      for (const agreement of [plan.agreement, plan.linked?.agreement]) {
        if (agreement) spent.set(agreement.id, plan);
      }
    }
    if (!spent.size) return null;
    await ended;
    const ids = [...spent.keys()];
    const weights = ids.map(
      (id) =>
        plans.filter((p) => !p.exact && (p.agreement.id === id || p.linked?.agreement.id === id)).length,
    );
    const rows = await this.dataSource.query<{ agreement_id: string; used: number }[]>(
      `INSERT INTO aggregate_budget (user_id, agreement_id, day, used)
       SELECT $1, a.id, (now() AT TIME ZONE 'UTC')::date, a.n FROM unnest($2::uuid[], $3::int[]) AS a(id, n)
       ON CONFLICT (user_id, agreement_id, day) DO UPDATE SET used = aggregate_budget.used + excluded.used
       RETURNING agreement_id, used`,
      [ctx.principal.userId, ids, weights],
    );
    const over = rows.find((row) => checkBudget(row.used, this.config.AGGREGATE_DAILY_BUDGET));
    if (!over) return null;
    const plan = spent.get(over.agreement_id)!;
    return [
      {
        ...checkBudget(over.used, this.config.AGGREGATE_DAILY_BUDGET)!,
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

  /** An execution error of graphql-js (a stored value GraphQL cannot represent): no data leaves. */
  private executionFailed(ctx: RequestContext, errors: string[]): DataPlaneResponse {
    this.logger.error({ errors, requestId: ctx.requestId }, 'data-plane execution error');
    // An execution error, as GraphQL answers one: 200, with the error and no data.
    return failureResponse('A value could not be represented in GraphQL', 200);
  }

  /** Runs every plan, one SQL statement each, in the request's read-only snapshot. */
  private async run(tx: Transaction, plans: Plan[], agencyId: string): Promise<Map<string, RootResult>> {
    const results = new Map<string, RootResult>();
    for (const plan of plans) {
      if (plan.kind === 'AGGREGATE') {
        const { text, values } = aggregateSql(plan);
        const rows = await tx.query<AggregateRow>(text, values);
        const groups = plan.exact
          ? protectedGroups({ groupBy: plan.groupBy, grant: { minCellSize: plan.minCellSize } }, rows)
          : perturbedGroups(plan, rows);
        const noise = plan.exact ? 0 : NOISE_BOUND;
        results.set(plan.responseKey, { kind: 'AGGREGATE', groups, noise, rowCount: groups.length });
        continue;
      }
      const { text, values } = pageSql(plan, this.config.RECORD_RELEASES, agencyId);
      const [row] = await tx.query<PageRow>(text, values);
      results.set(plan.responseKey, pageResult(plan, row));
    }
    return results;
  }

  private async recordReleases(ctx: RequestContext, plans: Plan[], results: Map<string, RootResult>) {
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
        };
        if (result.kind === 'ROWS' && result.rids && result.rowCount > 0) {
          // Which records left, and their digest in the chain, which vouches for the stored list.
          event.release = { datasetId: plan.shape.id, rids: result.rids };
          event.details = { releaseDigest: releaseDigest(result.rids) };
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
  private async refused(
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
      await this.auditLog.append(
        others.map((r) => ({
          actorUserId: ctx.principal.userId,
          actorAgencyId: ctx.principal.agencyId,
          decision: 'DENY' as const,
          reason: r.reason,
          details: { message: r.message.slice(0, 500) },
          ...r.audit,
          action: action ?? r.audit?.action ?? AuditAction.QUERY,
        })),
      );
    } catch (error) {
      this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write of a denial failed');
    }
    return refusalResponse(refusals, status);
  }
}

/**
 * The first round trip of a request of several root fields (or one the policy cache could not
 * answer alone): its snapshot, on the readers' pool (read-only connections with a statement time
 * limit), and the policy stamp, which any agreement change moves (see AgreementService.stamp).
 */
const SNAPSHOT = {
  reader: true,
  isolation: 'REPEATABLE READ',
  with: `SELECT stamp FROM policy_stamp WHERE id = 1`,
} as const;

/** The one row of a page's statement (see pageSql). */
interface PageRow {
  n: number;
  nodes: string;
  unrepresentable: boolean;
  rids?: string;
  position: string | null;
}

/** A page's result: its nodes' JSON, the records it releases, and where the next page starts. */
function pageResult(plan: Plan, row: PageRow): PageResult {
  const { n, nodes, unrepresentable, rids, position } = row;
  const returned = Math.min(n, plan.first);
  return {
    kind: 'ROWS',
    rids: rids ?? null,
    nodesJson: nodes,
    unrepresentable,
    pageInfo: {
      hasNextPage: n > plan.first,
      endCursor:
        returned && position ? sealCursor(plan.cursor, JSON.parse(position) as (string | null)[]) : null,
    },
    rowCount: returned,
  };
}

/** The digest of a release's record list, as its audit event stores it. */
export function releaseDigest(rids: string): string {
  return createHash('sha256').update(rids).digest('hex');
}

/** The status of an export's refusal: that of its first refusal's code, always a 4xx. */
function exportStatus(refusals: DataPlaneRefusal[]): number {
  const code = orderRefusals(refusals)[0]?.code;
  return code === 'FORBIDDEN' ? 403 : code === 'NOT_FOUND' ? 404 : 400;
}

/**
 * The rows of an export's cursor as a byte stream, a batch per round trip, fetched only as fast as
 * the client reads (memory stays bounded). It ends after the last row and COMMIT; a failure midway
 * destroys it, so the HTTP response ends without its final chunk and the client sees the failure.
 */
function exportStream(tx: Transaction, header: string | null, onFailure: (error: Error) => void): Readable {
  const { client } = tx;
  let released = false;
  let busy = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    client.off('error', onConnectionError);
    // A failed or abandoned export's connection is destroyed: its transaction dies with it.
    tx.abandon(error);
  };
  // The connection can fail while it waits for the client to read (no query in flight): pg then emits
  // 'error' on it, which must cut the stream, never go unhandled.
  const onConnectionError = (error: Error) => {
    onFailure(error);
    release(error);
    stream.destroy(error);
  };
  client.on('error', onConnectionError);
  const stream: Readable = new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (busy || released) return;
      busy = true;
      const first = header;
      header = null;
      client
        .query<{ line: string }>(`FETCH ${EXPORT_BATCH} FROM ${EXPORT_CURSOR}`)
        .then(
          async ({ rows }) => {
            busy = false;
            let chunk = first === null ? '' : `${first}\n`;
            for (const row of rows) chunk += `${row.line}\n`;
            if (rows.length < EXPORT_BATCH) {
              await tx.query(`CLOSE ${EXPORT_CURSOR}`);
              await tx.commit();
              released = true;
              client.off('error', onConnectionError);
              if (chunk) this.push(chunk);
              this.push(null);
              return;
            }
            this.push(chunk);
          },
          (error: Error) => {
            onFailure(error);
            release(error);
            this.destroy(error);
          },
        )
        .catch((error: Error) => {
          onFailure(error);
          release(error);
          this.destroy(error);
        });
    },
    destroy(error, callback) {
      release(error ?? undefined);
      callback(error);
    },
  });
  return stream;
}
