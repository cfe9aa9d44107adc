import { Inject, Injectable } from '@nestjs/common';
import { defaultFieldResolver, execute } from 'graphql';
import type { Logger } from 'pino';
import { type ReleaseCondition, ReleaseWithdrawnError } from '@broker/audit';
import { AuthService, type Principal, type RequestContext } from '@broker/auth';
import { PersonKeyIndex } from '@broker/linkage';
import {
  BROKER_CONFIG,
  type BrokerConfig,
  Database,
  LOGGER,
  MetricsService,
  type Transaction,
  isDatabaseUnavailable,
  policyStampSql,
} from '@broker/core';
import {
  type AggregateRow,
  LiteralParams,
  NOISE_BOUND,
  PolicyError,
  perturbationKey,
  perturbedGroups,
  protectedGroups,
  refusal,
  refusalOf,
} from '@broker/policy';
import { HashLookupIndex } from '@broker/registry';
import { aggregateSql } from './aggregate';
import { precheck } from './authorise';
import { type Decision, decideRequest } from './decide';
import { type AggregateAnswer, BudgetSpending, DataPlaneRecorder } from './data-plane-recorder';
import {
  PageBuilder,
  type PageRow,
  type PageRows,
  type PageStatement,
  pageRows,
  pageSql,
  planIsStable,
} from './page-sql';
import type { DataPlaneRequest, DataPlaneResponse, Plan } from './plan';
import { type CallerPolicy, PolicyCache } from './policy-cache.service';
import { DocumentCache } from './request-analysis';
import {
  type PageResult,
  failureResponse,
  spliceResponse,
  timeLimitRefusal,
  unauthenticatedResponse,
} from './response';

export { type DataPlaneRequest, type DataPlaneResponse, type Plan } from './plan';
export { pageSql, planIsStable } from './page-sql';
export { aggregateSql } from './aggregate';
export { precheck } from './authorise';
export { type Decision } from './decide';

/**
 * The data plane: answers a GraphQL request only within what the caller's active agreements grant
 * for the purpose it names. Every root field is authorised before anything runs; any refusal
 * answers `data: null`. Allowed reads are written to the audit log before their data leaves; if that
 * write fails, nothing leaves.
 */
@Injectable()
export class DataPlaneService {
  private readonly documents = new DocumentCache();

  constructor(
    private readonly policies: PolicyCache,
    private readonly db: Database,
    private readonly recorder: DataPlaneRecorder,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
    private readonly auth: AuthService,
    private readonly metrics: MetricsService,
    private readonly personKeys: PersonKeyIndex,
    readonly hashes: HashLookupIndex,
  ) {
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
        ? this.recorder.refused(ctx, early.refusals, early.status)
        : this.recorder.refused(ctx, [refusal('INVALID', early.message)], 400);
    }
    const alone = await this.answerAlone(ctx, request);
    if (alone) return alone;
    if (!(await this.verify(ctx))) return this.unauthenticated();
    // Perturbed aggregates spend the budget before any statement runs (DataPlaneRecorder.spendBudget):
    // a request that spends is decided, spends, and is decided again in a new snapshot. Agreements
    // may change in between: each decision spends only what it needs beyond what was spent, and
    // what the decision that is answered does not use is given back (BudgetSpending).
    const spending = new BudgetSpending();
    // Decisions taken again because what they read could not be released under them (see answer).
    let redecided = 0;
    for (let spends = 0; ;) {
      let began: Awaited<ReturnType<DataPlaneService['begin']>>;
      try {
        began = await this.begin(ctx.principal);
      } catch (error) {
        await this.recorder.refundBudget(ctx, spending, spending.excess([]));
        if (error instanceof PolicyMovingError) return policyMoved();
        if (error instanceof KeyStoppedError) return this.unauthenticated();
        throw error;
      }
      const { tx, policy, stamp } = began;
      let decision: Decision;
      try {
        const deciding = process.hrtime.bigint();
        decision = this.decide(policy, request);
        if (decision.kind === 'run') this.phase('decide', deciding);
      } catch (error) {
        await tx.rollback();
        await this.recorder.refundBudget(ctx, spending, spending.excess([]));
        throw error;
      }
      if (decision.kind === 'run') {
        const due = spending.due(decision.plans);
        if (!due.size) {
          const answered = await this.answer(ctx, tx, decision, stamp);
          // An agreement's window ended, an agreement changed or a key was revoked between the
          // decision and the release's record: nothing left, and the request is decided again, now
          // (and ends, nothing released, if that keeps happening).
          if (!answered) {
            // Its statements ran: what they used is billed, whatever the request ends with.
            spending.read(decision.plans);
            if (redecided++ < MAX_POLICY_LOADS) continue;
            await this.recorder.refundBudget(ctx, spending, spending.excess([]));
            return policyMoved();
          }
          // A request that failed with nothing released and nothing in the audit log (its read or its
          // append failed) is billed nothing either: what it spent would be accounted for nowhere.
          const unused = UNRECORDED.has(answered) ? spending.excess([]) : spending.excess(decision.plans);
          await this.recorder.refundBudget(ctx, spending, unused);
          return answered;
        }
        // Nothing has been read: the snapshot is given back before the budget is spent (on another
        // connection), and the request decided again in a new one.
        await tx.rollback();
        if (spends === MAX_BUDGET_SPENDS) {
          // Its agreements changed under every decision: it ends, nothing read, nothing billed.
          await this.recorder.refundBudget(ctx, spending, spending.excess([]));
          this.logger.warn(
            { requestId: ctx.requestId, spends },
            'data-plane request decided again too often',
          );
          return policyMoved();
        }
        spends += 1;
        const over = await this.recorder.spendBudget(ctx, due, spending);
        if (over) {
          await this.recorder.refundBudget(ctx, spending, spending.excess([]));
          return this.recorder.refused(ctx, over);
        }
        continue;
      }
      // Nothing runs: the snapshot is given back before the denial is written (on another connection),
      // and whatever an earlier decision spent is given back.
      await tx.rollback();
      await this.recorder.refundBudget(ctx, spending, spending.excess([]));
      return decision.kind === 'invalid'
        ? this.recorder.refused(ctx, [refusal('INVALID', decision.message)], 400)
        : this.recorder.refused(ctx, decision.refusals, decision.status);
    }
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
    const deciding = process.hrtime.bigint();
    const decision = this.decide(latest.policy, request);
    if (decision.kind !== 'run' || decision.plans.length !== 1 || decision.plans[0].kind !== 'ROWS') {
      return undefined;
    }
    const [plan] = decision.plans;
    // The first row: it carries the policy stamp (and whether the key works) of the rows' snapshot.
    let first: StampedRow | undefined;
    let page: PageBuilder | undefined;
    let statement: PageStatement;
    try {
      // The policy stamp, and a remembered principal's key, are read in the snapshot of the rows.
      statement = pageSql(
        plan,
        this.config.RECORD_RELEASES,
        agencyId,
        (params) => {
          // Every principal's key, even one read from the database for this request: a user
          // deactivated (or a key rotated) since then has nothing released under it.
          const stamp = `${policyStampSql(params.add(agencyId, 'uuid'))}::text AS policy_stamp`;
          return `${stamp}, ${this.auth.keyWorksSql(ctx.principal, (v, type) => params.add(v, type))} AS key_works`;
        },
        this.hashes,
      );
      this.lookedUp(statement);
      const reading = process.hrtime.bigint();
      this.phase('decide', deciding, reading);
      // The page is written as its rows arrive, while PostgreSQL sends the rest (none of it leaves
      // before the release is recorded, nor at all if the stamp below says the policy moved).
      const builder = (page = new PageBuilder(plan, statement, true));
      await this.db.read<StampedRow>(statement.text, statement.values, {
        stablePlan: planIsStable(plan),
        onRow: (row) => {
          first ??= row;
          builder.push(row);
        },
      });
      this.phase('read', reading);
    } catch (error) {
      // A refusal found while building the statement is decided again under a fresh stamp.
      if (error instanceof PolicyError) return undefined;
      const limit = timeLimitRefusal(error);
      if (limit) {
        // The statement that would have checked a remembered key did not finish: it is checked now,
        // before anything is recorded under it.
        if (!(await this.verify(ctx))) return this.unauthenticated();
        return this.recorder.refused(ctx, [limit]);
      }
      return this.readFailed(ctx, error);
    }
    // An empty page says nothing of the stamp or the key: it is asked again on the other path.
    const row = first;
    if (!row || !page) return undefined;
    // Nothing read under a key that stopped working is used; the caller is told so (401) once the
    // key is asked about again, on the other path (see verify).
    if (!row.key_works) {
      this.auth.forget(ctx.principal);
      ctx.unverified = true;
      return undefined;
    }
    ctx.unverified = false;
    if (Number(row.policy_stamp) !== latest.stamp) return undefined;
    // Decided inside the window, read past its end: decided again, now (see inWindow).
    if (!inWindow(decision.plans, new Date())) return undefined;
    return this.release(ctx, decision, new Map([[plan.responseKey, page.finish()]]), null, latest.stamp);
  }

  /**
   * Whether the caller is who it says: true for a principal read from the database for this request;
   * a remembered one (see AuthService.remembered) is checked now, once, before anything is read or
   * recorded under it.
   */
  async verify(ctx: RequestContext): Promise<boolean> {
    if (!ctx.unverified) return true;
    if (!(await this.auth.stillWorks(ctx.principal))) return false;
    ctx.unverified = false;
    return true;
  }

  /** The answer to a key that stopped working: 401, counted in metrics, not audited. */
  unauthenticated(): DataPlaneResponse {
    this.metrics.unauthenticated.inc({ endpoint: '/data/graphql' });
    return unauthenticatedResponse();
  }

  /**
   * Begins the request's read-only snapshot and reads the policy stamp in the same round trip, so
   * an agreement changed through any instance is seen by the next request; returns the caller's
   * policy at that stamp. On a cache miss the connection is given back before the policy is loaded
   * (a request never waits for a second connection while it holds one) and the snapshot begun
   * again, until the policy cached is the one of the snapshot's stamp: a policy loaded before an
   * agreement changed (a revocation committed between the load and the snapshot) would answer with
   * rows read after the change. Agreements that change under every load end the request with
   * {@link PolicyMovingError} (nothing read) rather than loop.
   *
   * The same round trip asks whether the caller's key still works as its principal, in the snapshot:
   * a user deactivated (or a key rotated) after the request was authenticated ends it with
   * {@link KeyStoppedError}, nothing read, recorded or audited under it.
   */
  async begin(principal: Principal): Promise<{ tx: Transaction; policy: CallerPolicy; stamp: number }> {
    const agencyId = principal.agencyId!;
    // Sent with its BEGIN in one round trip, which takes no parameters: the principal's ids and role
    // as literals.
    const literals = new LiteralParams();
    const keyWorks = this.auth.keyWorksSql(principal, (value, type) => literals.add(value, type));
    const stamp = policyStampSql(literals.add(agencyId, 'uuid'));
    const opening = `SELECT ${stamp} AS stamp, ${keyWorks} AS key_works`;
    for (let loads = 0; ; loads += 1) {
      const tx = await this.db.begin({ ...SNAPSHOT, with: opening });
      if (!tx.opening[0].key_works) {
        await tx.rollback();
        this.auth.forget(principal);
        throw new KeyStoppedError();
      }
      const stamp = Number(tx.opening[0].stamp);
      const now = new Date();
      const policy = this.policies.cached(agencyId, stamp, now);
      if (policy) return { tx, policy, stamp };
      await tx.rollback();
      if (loads === MAX_POLICY_LOADS) throw new PolicyMovingError();
      await this.policies.reload(agencyId, now);
    }
  }

  /**
   * The in-process decision on a request that passed {@link precheck}, under the caller's policy
   * (see {@link decideRequest}). No I/O.
   */
  decide(policy: CallerPolicy, request: DataPlaneRequest): Decision {
    return decideRequest(this.documents, policy, request);
  }

  /**
   * Runs the authorised plans (decided under policy stamp `stamp`), records the release, and only
   * then answers with the data; undefined (nothing recorded or released) when an agreement they are
   * answered under left its window, or the stamp moved, between the decision and the release's
   * record, for the request to be decided again.
   */
  private async answer(
    ctx: RequestContext,
    tx: Transaction,
    decision: Extract<Decision, { kind: 'run' }>,
    stamp: number,
  ): Promise<DataPlaneResponse | undefined> {
    let results: Map<string, Read>;
    try {
      const reading = process.hrtime.bigint();
      results = await this.run(tx, decision.plans, ctx.principal.agencyId!);
      this.phase('read', reading);
    } catch (error) {
      await tx.rollback();
      if (error instanceof PolicyError) return this.recorder.refused(ctx, [refusalOf(error)]);
      const limit = timeLimitRefusal(error);
      if (limit) return this.recorder.refused(ctx, [limit]);
      return this.readFailed(ctx, error);
    }
    if (!inWindow(decision.plans, new Date())) {
      await tx.rollback();
      return undefined;
    }
    // The read-only snapshot ends while the release is recorded: nothing it read depends on its COMMIT.
    return this.release(ctx, decision, results, tx.end('COMMIT'), stamp);
  }

  /**
   * Records the release of what the plans returned (their audit events, committed) and only then
   * answers with the data; `snapshotEnded` is the end of the snapshot they were read in, if one was
   * open, and `stamp` the policy stamp they were decided and read under. Undefined, nothing recorded
   * or released, when the release no longer holds as the append records it (see releaseCondition).
   */
  private async release(
    ctx: RequestContext,
    decision: Extract<Decision, { kind: 'run' }>,
    read: Map<string, Read>,
    snapshotEnded: Promise<void> | null,
    stamp: number,
  ): Promise<DataPlaneResponse | undefined> {
    const { plans } = decision;
    const ended = snapshotEnded ?? Promise.resolve();
    // The release's audit append starts (its failure caught at once, and answered below) ...
    const appending = process.hrtime.bigint();
    const onlyIf = releaseCondition(plans, stamp, ctx.principal);
    const recorded = this.recorder.recordReleases(ctx, plans, read, onlyIf).then(
      () => {
        this.phase('append', appending);
        return null;
      },
      (error: unknown) => ({ error }),
    );
    // ... and, once it is on its way (setImmediate: after the I/O its start queued), the whole answer
    // is written (pages, cursors, the response's bytes) while PostgreSQL appends. Nothing leaves
    // before the append commits: the answer is only returned after it.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const rendering = process.hrtime.bigint();
    const answer = this.render(ctx, decision, read);
    this.phase('render', rendering);
    // An answer still being written that fails is answered when it is awaited, below; if the append
    // failed first it is dropped, and its failure with it.
    if (answer instanceof Promise) answer.catch(() => undefined);
    const failed = await recorded;
    if (failed) {
      const { error } = failed;
      await ended;
      // An agreement changed, a key was revoked or a window closed after the read: nothing left.
      if (error instanceof ReleaseWithdrawnError) return undefined;
      this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write failed: no data released');
      // Unavailable, not failed: the caller may retry, and nothing left.
      return unrecorded(failureResponse('The access could not be recorded, so nothing was released', 503));
    }
    // Long done by now, as a rule: the connection is back in the pool before the answer leaves.
    await ended;
    return answer;
  }

  /**
   * The answer to what the plans read, written but not yet released (see {@link release}): a plain
   * operation's as the bytes of its JSON, each page's JSON spliced in (one flat buffer, encoded
   * while the append is on its way rather than when the answer is sent); any other through
   * graphql-js. Each page's rows are let go once its JSON is written.
   */
  private render(
    ctx: RequestContext,
    decision: Extract<Decision, { kind: 'run' }>,
    read: Map<string, Read>,
  ): Promise<DataPlaneResponse> | DataPlaneResponse {
    const { schema, document, operation, variableValues, splice } = decision;
    const results = new Map<string, RootResult>();
    for (const [key, result] of read) results.set(key, result.kind === 'ROWS' ? result.write() : result);
    read.clear();
    if (splice) {
      // graphql-js would fail on a value its Float cannot represent: so does the splice.
      const pages = results as Map<string, PageResult>;
      if ([...pages.values()].some((r) => r.unrepresentable)) {
        return this.executionFailed(ctx, ['Float cannot represent a non-finite value']);
      }
      return { status: 200, json: spliceResponse(splice, pages) };
    }
    const queryType = schema.getQueryType();
    const executed = execute({
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
        return { nodes: JSON.parse(result.nodes.toString('utf8')) as unknown[], pageInfo: result.pageInfo };
      },
    });
    const answered = (result: Awaited<typeof executed>): DataPlaneResponse =>
      result.errors?.length
        ? this.executionFailed(
            ctx,
            result.errors.map((e) => e.message),
          )
        : { status: 200, body: { data: result.data } };
    return executed instanceof Promise ? executed.then(answered) : answered(executed);
  }

  /** Runs every plan, one SQL statement each, in the request's read-only snapshot. */
  private async run(tx: Transaction, plans: Plan[], agencyId: string): Promise<Map<string, Read>> {
    const results = new Map<string, Read>();
    for (const plan of plans) {
      if (plan.kind === 'AGGREGATE') {
        const perturbation = perturbationKey(plan.cursor.secret);
        const statement = aggregateSql(plan, perturbation, this.hashes);
        this.lookedUp(statement);
        const { text, values } = statement;
        const rows = await tx.query<AggregateRow>(text, values);
        const groups = plan.exact
          ? protectedGroups({ groupBy: plan.groupBy, grant: { minCellSize: plan.minCellSize } }, rows)
          : perturbedGroups(plan, rows, perturbation);
        const noise = plan.exact ? 0 : NOISE_BOUND;
        results.set(plan.responseKey, { kind: 'AGGREGATE', groups, noise, rowCount: groups.length });
        continue;
      }
      const statement = pageSql(plan, this.config.RECORD_RELEASES, agencyId, undefined, this.hashes);
      this.lookedUp(statement);
      const rows = await tx.query<PageRow>(statement.text, statement.values);
      results.set(plan.responseKey, pageRows(plan, statement, rows));
    }
    return results;
  }

  /**
   * The answer to a read that failed in the database (neither a refusal nor the time limit: a lost
   * connection, a server shutting down): unavailable, not failed; the caller may retry, and nothing
   * was read or released.
   */
  private readFailed(ctx: RequestContext, error: unknown): DataPlaneResponse {
    this.logger.error({ err: error, requestId: ctx.requestId }, 'data-plane read failed: nothing released');
    const answer = failureResponse('The query could not be answered, so nothing was released', 503);
    // A read the database cut (a lost connection, a restart) bills nothing. Any other failure of the
    // statement keeps what it spent: a caller who could make a perturbed aggregate fail at will must
    // not time it for free.
    return isDatabaseUnavailable(error) ? unrecorded(answer) : answer;
  }

  /**
   * A filter looked personKeys, or values of HASH names, up: their lookup tables are built if they are
   * not (in the background).
   */
  lookedUp(statement: Pick<PageStatement, 'hashed'> & Partial<Pick<PageStatement, 'personKeyTable'>>): void {
    if (statement.personKeyTable) this.personKeys.want(statement.personKeyTable);
    for (const wanted of statement.hashed) this.hashes.want(wanted);
  }

  /**
   * Counts a step of an allowed request (broker_data_plane_phase_seconds), from `started` to `ended`;
   * a request decided again (its policy changed under it) counts its steps each time.
   */
  private phase(
    phase: 'decide' | 'read' | 'append' | 'render',
    started: bigint,
    ended = process.hrtime.bigint(),
  ): void {
    this.metrics.dataPlanePhaseDuration.observe({ phase }, Number(ended - started) / 1e9);
  }

  /** An execution error of graphql-js (a stored value GraphQL cannot represent): no data leaves. */
  private executionFailed(ctx: RequestContext, errors: string[]): DataPlaneResponse {
    this.logger.error({ errors, requestId: ctx.requestId }, 'data-plane execution error');
    // An execution error, as GraphQL answers one: 200, with the error and no data.
    return failureResponse('A value could not be represented in GraphQL', 200);
  }
}

/**
 * The answers of requests that failed after their decision with no audit event (a read the database
 * cut, or an append that failed): nothing was released, so nothing is billed (see
 * {@link DataPlaneService.handle}).
 */
const UNRECORDED = new WeakSet<DataPlaneResponse>();

function unrecorded(response: DataPlaneResponse): DataPlaneResponse {
  UNRECORDED.add(response);
  return response;
}

/**
 * Whether every agreement the plans are answered under (both sides of a linked count) is inside its
 * validity window at `now`. A request is decided against the clock when it starts, and its rows
 * are read after: checked again once they are read, before anything is recorded or released, so
 * that access stops exactly at `validUntil` (DESIGN §2.8) however long the read took.
 */
export function inWindow(plans: readonly Plan[], now: Date): boolean {
  return answeredUnder(plans).every((a) => a.validFrom <= now && now < a.validUntil);
}

/** The agreements `plans` are answered under: each plan's, and the other side's of a linked count. */
function answeredUnder(plans: readonly Plan[]): Plan['agreement'][] {
  return plans.flatMap((plan) => (plan.linked ? [plan.agreement, plan.linked.agreement] : [plan.agreement]));
}

/**
 * The condition a release of `plans` is recorded under (see ReleaseCondition): the policy stamp
 * `stamp` they were decided and read under is still the stamp, the caller's key (`apiKeyId`, which
 * they were read under) is not revoked, and the event is sealed before the earliest end of the
 * windows of the agreements they are answered under (both sides of a linked count). {@link inWindow}
 * checks the window in the process once the rows are read; this checks it again in the database,
 * against the time the release is recorded at, which is the time it leaves.
 */
export function releaseCondition(
  plans: readonly Plan[],
  stamp: number,
  principal: Pick<Principal, 'agencyId' | 'apiKeyId'>,
): ReleaseCondition {
  const before = Math.min(...answeredUnder(plans).map((a) => a.validUntil.getTime()));
  return {
    policyStamp: stamp,
    agencyId: principal.agencyId!,
    before: new Date(before),
    apiKeyId: principal.apiKeyId,
  };
}

/**
 * How many times one request may load its agency's policy: once as a rule, again where an agreement
 * changed between the load and the snapshot. Past it, {@link PolicyMovingError}.
 */
export const MAX_POLICY_LOADS = 5;

/** The caller's key stopped working after the request was authenticated: nothing was read. */
export class KeyStoppedError extends Error {
  constructor() {
    super("the caller's key stopped working");
  }
}

/** The agreements in force changed under every policy load of a request: nothing was read. */
export class PolicyMovingError extends Error {
  constructor() {
    super('the agreements in force changed under every policy load');
  }
}

/** The answer to a request whose agreements changed under every decision: 503, nothing read. */
export function policyMoved(): DataPlaneResponse {
  return failureResponse(
    'The agreements in force changed while the request was decided, so nothing was read: try again',
    503,
  );
}

/**
 * How many times one request may spend the budget: once as a rule, again where an agreement changed
 * between the spend and the next decision so that it needs more. A request whose agreements change
 * under every decision ends past it (503, nothing read, nothing billed), rather than loop.
 */
export const MAX_BUDGET_SPENDS = 3;

/**
 * What a root field's statement read: a page's rows (written into its page once its release's append
 * has started), or an aggregate's answer.
 */
type Read = PageRows | AggregateAnswer;

/** A row of a page read alone (see DataPlaneService.answerAlone): with the snapshot's policy stamp. */
type StampedRow = PageRow & { policy_stamp: string; key_works?: boolean };

/** A root field's answer, written. */
type RootResult = PageResult | AggregateAnswer;

/**
 * The first round trip of a request of several root fields (or one the policy cache could not
 * answer alone): its snapshot, on the readers' pool (read-only connections with a statement time
 * limit), the policy stamp, which any agreement change moves (see AgreementService.stamp), and
 * whether the caller's key still works (see DataPlaneService.begin).
 */
const SNAPSHOT = { reader: true, isolation: 'REPEATABLE READ' } as const;
