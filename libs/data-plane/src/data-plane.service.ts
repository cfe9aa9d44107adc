import { Inject, Injectable } from '@nestjs/common';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationContext,
  defaultFieldResolver,
  execute,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import type { Logger } from 'pino';
import type { PoolClient, QueryResult } from 'pg';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService } from '@broker/audit';
import { type Principal, type RequestContext, Role } from '@broker/auth';
import { createHash } from 'node:crypto';
import { BROKER_CONFIG, type BrokerConfig, LOGGER, pgPool, quoteIdent } from '@broker/core';
import {
  type CompiledGrant,
  type DataWhere,
  GrantAccess,
  PERSON_KEY,
  PolicyError,
  type ReleasedNameOptions,
  SqlParams,
  checkRequest,
  orderBySql,
  releasedJsonExpression,
  whereFieldNames,
  whereSql,
} from '@broker/policy';
import { personKeySql } from '@broker/linkage';
import { type DatasetShapeRecord, recordTable } from '@broker/registry';
import { type ActiveAgreement, MAX_FIRST, type RootField } from './caller-schema';
import {
  type AggregateGroup,
  MAX_GROUPS,
  type ReadableGrant,
  aggregateSql,
  populationConditions,
  protectedGroups,
} from './aggregate';
import { AuditBatcher, type DataPlaneEvent } from './audit-batcher';
import { type CallerPolicy, PolicyCache } from './policy-cache.service';
import {
  type Analysis,
  DocumentCache,
  type RootArgs,
  type Splice,
  analyse,
  freezeDeep,
} from './request-analysis';

/** The body of a data-plane request. */
export interface DataPlaneRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

/**
 * An HTTP answer: its status and GraphQL-shaped body, either as an object to serialise or, for the
 * common case, as the JSON text already written (PostgreSQL's JSON of each page spliced in).
 */
export type DataPlaneResponse =
  | { status: number; body: ExecutionResult | { data: null; errors: ReturnType<GraphQLError['toJSON']>[] } }
  | { status: number; json: string };

/** One root field of a request, authorised and ready to run as one SQL statement. */
export interface Plan {
  /** A page of rows, or an aggregate's groups. */
  kind: 'ROWS' | 'AGGREGATE';
  responseKey: string;
  root: RootField;
  shape: DatasetShapeRecord;
  agreement: ActiveAgreement;
  grant: CompiledGrant;
  purpose: string;
  /** Released names read, sorted: what the audit log records. */
  fields: string[];
  /** Members of each node's JSON object, in order: [key, released name]. */
  columns: [string, string][];
  where: DataWhere | null;
  orderBy: { field: string; direction: 'ASC' | 'DESC' }[];
  first: number;
  offset: number;
  /** Aggregates: the released names to group by, in the caller's order. */
  groupBy: string[];
  /** Aggregates: the caller's ROWS grants over the dataset (see docs/disclosure-control.md). */
  readable: ReadableGrant[];
}

/** What {@link DataPlaneService.decide} concluded about a request. */
export type Decision =
  | { kind: 'invalid'; message: string }
  | { kind: 'refused'; refusals: Refusal[]; status: number }
  | {
      kind: 'run';
      schema: GraphQLSchema;
      document: DocumentNode;
      operation: OperationDefinitionNode;
      variableValues: Record<string, unknown>;
      plans: Plan[];
      /** How to write the response around PostgreSQL's JSON, or null for graphql-js to write it. */
      splice: Splice | null;
    };

/** A refused request: why, and what the audit log records of it. */
export interface Refusal {
  code: 'FORBIDDEN' | 'BAD_USER_INPUT';
  message: string;
  responseKey?: string;
  audit?: {
    action?: AuditAction;
    purpose?: string;
    datasetId?: string;
    agreementId?: string;
    agreementVersion?: number;
    fields?: string[];
  };
}

/** What one page's statement returned: its nodes as PostgreSQL's JSON text. */
interface PageResult {
  kind: 'ROWS';
  nodesJson: string;
  /** A Float value that GraphQL cannot represent (NaN, ±Infinity) is among the nodes. */
  unrepresentable: boolean;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  rowCount: number;
  /** The returned rows' random ids as PostgreSQL's array text, when releases are recorded. */
  rids: string | null;
}

/** What an aggregate's statement returned, protected. */
interface AggregateAnswer {
  kind: 'AGGREGATE';
  groups: AggregateGroup[];
  rowCount: number;
}

type RootResult = PageResult | AggregateAnswer;

const MAX_QUERY_LENGTH = 100_000;
/** Most names an aggregate may group by under an AGGREGATE_ONLY grant (docs/disclosure-control.md). */
export const MAX_GROUP_BY_AGGREGATE_ONLY = 4;
/** Under a ROWS grant the rows are released anyway; the cap only bounds the work. */
export const MAX_GROUP_BY_ROWS = 6;
const MAX_TOKENS = 5_000;
// Limits reject without saying where they stand, so a caller cannot tune a query to sit under them;
// they report through the validation context instead of throwing, so every problem is listed.
const report = {
  exposeLimits: false,
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};
// The schema is flat (root lists of scalar rows), so the cost limit, which multiplies by `first`,
// only has to stop many large pages in one request: 20 full pages of 10,000 rows of ~40 fields.
const LIMIT_RULES = [
  maxDepthRule({ n: 12, ignoreIntrospection: true, ...report }),
  maxAliasesRule({ n: 20, ...report }),
  maxDirectivesRule({ n: 20, ...report }),
  costLimitRule({ maxCost: 25_000_000, ignoreIntrospection: true, ...report }),
];
const RULES = [...specifiedRules, ...LIMIT_RULES];
const DID_YOU_MEAN = /\s*Did you mean[^?]*\?/g;
// Validation failures that name something outside the caller's schema: a request for data it is not
// granted, answered as such (FORBIDDEN) whether the thing exists for others or not at all.
const OUTSIDE_SCHEMA =
  /^(Cannot query field|Unknown argument|Unknown type)|Field "[^"]*" is not defined by type|does not exist in "[A-Za-z0-9_]+" enum/;

/** A validation or variable error as the caller sees it: naming nothing it may not see. */
function classify(error: GraphQLError): Refusal {
  const message = error.message.replace(DID_YOU_MEAN, '');
  if (OUTSIDE_SCHEMA.test(error.message)) return refuse('FORBIDDEN', message);
  if (/^Syntax Error: Query validation error/.test(error.message)) {
    return refuse('BAD_USER_INPUT', 'The query is too large or too complex');
  }
  return refuse('BAD_USER_INPUT', message);
}

/**
 * Checks that need no policy: the caller's role and the request's shape. Returns null when the
 * request may go on, refusals (audited) for a caller who reads no records, or a message (400).
 */
export function precheck(
  principal: Principal,
  request: DataPlaneRequest | null | undefined,
): { refusals: Refusal[]; message?: never } | { message: string; refusals?: never } | null {
  if (principal.role !== Role.ANALYST || !principal.agencyId) {
    return { refusals: [refuse('FORBIDDEN', 'Only analysts query records')] };
  }
  const { query, variables, operationName } = request ?? {};
  if (typeof query !== 'string' || !query.trim()) {
    return { message: 'The request needs a GraphQL query string' };
  }
  if (query.length > MAX_QUERY_LENGTH) return { message: 'The query is too large' };
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
    return { message: 'variables must be an object' };
  }
  if (operationName != null && typeof operationName !== 'string') {
    return { message: 'operationName must be a string' };
  }
  return null;
}

const refuse = (code: Refusal['code'], message: string, extra: Partial<Refusal> = {}): Refusal => ({
  code,
  message,
  ...extra,
});

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
    audit: AuditService,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
  ) {
    this.auditLog = new AuditBatcher(dataSource, audit);
    if (!config.RECORD_RELEASES) {
      logger.warn(
        'RECORD_RELEASES=false: row releases are not recorded, so subject access reports miss them',
      );
    }
  }

  /** Answers one request. */
  async handle(ctx: RequestContext, request: DataPlaneRequest): Promise<DataPlaneResponse> {
    const early = precheck(ctx.principal, request);
    if (early) return early.refusals ? this.refused(ctx, early.refusals) : this.invalid(early.message);
    const { client, policy } = await this.begin(ctx.principal.agencyId!);
    let decision: Decision;
    try {
      decision = this.decide(policy, request);
    } catch (error) {
      await end(client, 'ROLLBACK');
      throw error;
    }
    if (decision.kind === 'run') return this.answer(ctx, client, decision);
    // Nothing runs: the snapshot is given back before the denial is written (on another connection).
    await end(client, 'ROLLBACK');
    return decision.kind === 'invalid'
      ? this.invalid(decision.message)
      : this.refused(ctx, decision.refusals, decision.status);
  }

  /**
   * Begins the request's read-only snapshot and reads the policy stamp in the same round trip, so
   * an agreement changed through any instance is seen by the next request; returns the caller's
   * policy at that stamp. On a cache miss the connection is given back before the policy is loaded
   * (a request never waits for a second connection while it holds one) and the snapshot begun
   * again; the policy loaded then is at least as new as the request.
   */
  private async begin(agencyId: string): Promise<{ client: PoolClient; policy: CallerPolicy }> {
    let loaded: CallerPolicy | undefined;
    for (;;) {
      const client = await pgPool(this.dataSource).connect();
      let stamp: number;
      try {
        const results = (await client.query(BEGIN_SNAPSHOT)) as unknown as QueryResult<{ stamp: string }>[];
        stamp = Number(results[results.length - 1].rows[0].stamp);
      } catch (error) {
        await end(client, 'ROLLBACK');
        throw error;
      }
      const now = new Date();
      const policy = this.policies.cached(agencyId, stamp, now) ?? loaded;
      if (policy) return { client, policy };
      await end(client, 'ROLLBACK');
      loaded = await this.policies.reload(agencyId, now);
    }
  }

  /**
   * The in-process decision on a request that passed {@link precheck}, under the caller's policy:
   * parse, validate, coerce variables, and authorise every root field into a plan. No I/O.
   */
  decide(policy: CallerPolicy, request: DataPlaneRequest): Decision {
    const { query, variables, operationName } = request as {
      query: string;
      variables?: Record<string, unknown> | null;
      operationName?: string | null;
    };
    if (!policy.schema) {
      return {
        kind: 'refused',
        refusals: [refuse('FORBIDDEN', 'No active agreement grants your agency any data')],
        status: 200,
      };
    }
    const { schema } = policy.schema;

    // Parsing and validation depend only on the schema and the query text: done once per pair.
    let cached = this.documents.get(schema, query);
    if (!cached) {
      let document: DocumentNode;
      try {
        document = parse(query, { maxTokens: MAX_TOKENS, noLocation: false });
      } catch (error) {
        const message =
          error instanceof GraphQLError && /token/i.test(error.message)
            ? 'The query is too large'
            : (error as Error).message;
        return { kind: 'invalid', message: message.replace(DID_YOU_MEAN, '') };
      }
      const validationErrors = validate(schema, document, RULES, { maxErrors: 20 });
      if (validationErrors.length) {
        return { kind: 'refused', refusals: validationErrors.map(classify), status: 400 };
      }
      cached = this.documents.set(schema, query, document);
    }
    const { document } = cached;
    const name = operationName ?? null;
    let found = cached.operations.get(name);
    if (!found) {
      const operation = getOperationAST(document, name);
      if (!operation) return { kind: 'invalid', message: 'Name the operation to run with operationName' };
      // Without variables, what the operation asks for is fixed: analysed once, authorised every time.
      const analysis = operation.variableDefinitions?.length
        ? null
        : freezeDeep(analyse(policy.schema, document, operation, {}));
      found = { operation, analysis };
      cached.operations.set(name, found);
    }
    const { operation } = found;
    const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
    if (coerced.errors) return { kind: 'refused', refusals: coerced.errors.map(classify), status: 400 };
    const variableValues = coerced.coerced;
    const analysis = found.analysis ?? analyse(policy.schema, document, operation, variableValues);

    const { plans, refusals } = authorise(analysis, policy);
    if (refusals.length) return { kind: 'refused', refusals, status: 200 };
    return { kind: 'run', schema, document, operation, variableValues, plans, splice: analysis.splice };
  }

  /** Runs the authorised plans, records the release, and only then answers with the data. */
  private async answer(
    ctx: RequestContext,
    client: PoolClient,
    decision: Extract<Decision, { kind: 'run' }>,
  ): Promise<DataPlaneResponse> {
    const { schema, document, operation, variableValues, plans, splice } = decision;
    let results: Map<string, RootResult>;
    try {
      results = await this.run(client, plans, ctx.principal.agencyId!);
    } catch (error) {
      await end(client, 'ROLLBACK');
      if (error instanceof PolicyError) return this.refused(ctx, [refuse(error.code, error.message)]);
      throw error;
    }
    // The read-only snapshot ends while the release is recorded: nothing it read depends on its COMMIT.
    const ended = end(client, 'COMMIT');
    try {
      await this.recordReleases(ctx, plans, results);
    } catch (error) {
      await ended;
      this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write failed: no data released');
      return {
        status: 500,
        body: {
          data: null,
          errors: [
            new GraphQLError('The access could not be recorded, so nothing was released', {
              extensions: { code: 'INTERNAL_SERVER_ERROR' },
            }).toJSON(),
          ],
        },
      };
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
        if (result.kind === 'AGGREGATE') return { groups: result.groups };
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

  private executionFailed(ctx: RequestContext, errors: string[]): DataPlaneResponse {
    this.logger.error({ errors, requestId: ctx.requestId }, 'data-plane execution error');
    return {
      status: 500,
      body: {
        data: null,
        errors: [
          new GraphQLError('Internal error', { extensions: { code: 'INTERNAL_SERVER_ERROR' } }).toJSON(),
        ],
      },
    };
  }

  /** Runs every plan, one SQL statement each, in the request's read-only snapshot. */
  private async run(client: PoolClient, plans: Plan[], agencyId: string): Promise<Map<string, RootResult>> {
    const results = new Map<string, RootResult>();
    for (const plan of plans) {
      if (plan.kind === 'AGGREGATE') {
        const { text, values } = aggregateSql(plan);
        const { rows } = await client.query<{ k: string; n: number; v: number; selected: boolean }>(
          text,
          values,
        );
        if (rows.length > MAX_GROUPS) {
          throw new PolicyError(
            'BAD_USER_INPUT',
            `The grouping makes more than ${MAX_GROUPS} groups: group by fewer or coarser fields`,
          );
        }
        const groups = protectedGroups(plan, rows);
        results.set(plan.responseKey, { kind: 'AGGREGATE', groups, rowCount: groups.length });
        continue;
      }
      const { text, values } = pageSql(plan, this.config.RECORD_RELEASES, agencyId);
      const { rows } = await client.query<{
        n: number;
        nodes: string;
        unrepresentable: boolean;
        rids?: string;
      }>(text, values);
      const { n, nodes, unrepresentable, rids } = rows[0];
      const returned = Math.min(n, plan.first);
      results.set(plan.responseKey, {
        kind: 'ROWS',
        rids: rids ?? null,
        nodesJson: nodes,
        unrepresentable,
        pageInfo: {
          hasNextPage: n > plan.first,
          endCursor: returned ? encodeCursor(plan.offset + returned) : null,
        },
        rowCount: returned,
      });
    }
    return results;
  }

  private async recordReleases(ctx: RequestContext, plans: Plan[], results: Map<string, RootResult>) {
    if (!plans.length) return;
    await this.auditLog.append(
      plans.map((plan): DataPlaneEvent => {
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
        return event;
      }),
    );
  }

  private async refused(ctx: RequestContext, all: Refusal[], status = 200): Promise<DataPlaneResponse> {
    // Denials first: whether a request is refused never depends on the order of its parts.
    const refusals = [
      ...all.filter((r) => r.code === 'FORBIDDEN'),
      ...all.filter((r) => r.code !== 'FORBIDDEN'),
    ];
    const denials = refusals.filter((r) => r.code === 'FORBIDDEN');
    if (denials.length) {
      try {
        await this.auditLog.append(
          denials.map((denial) => ({
            actorUserId: ctx.principal.userId,
            actorAgencyId: ctx.principal.agencyId,
            decision: 'DENY',
            reason: denial.message.slice(0, 500),
            ...denial.audit,
            action: denial.audit?.action ?? AuditAction.QUERY,
          })),
        );
      } catch (error) {
        this.logger.error({ err: error, requestId: ctx.requestId }, 'audit write of a denial failed');
      }
    }
    return {
      status,
      body: {
        data: null,
        errors: refusals.map((r) =>
          new GraphQLError(r.message, {
            path: r.responseKey ? [r.responseKey] : undefined,
            extensions: { code: r.code },
          }).toJSON(),
        ),
      },
    };
  }

  private invalid(message: string): DataPlaneResponse {
    return {
      status: 400,
      body: {
        data: null,
        errors: [new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } }).toJSON()],
      },
    };
  }
}

/**
 * Authorises every root field of an analysed operation under the caller's policy, on every request:
 * the agreement chosen for its dataset and purpose, and every name it reads, filters or orders by.
 * Nothing runs unless all are allowed.
 */
function authorise(analysis: Analysis, policy: CallerPolicy): { plans: Plan[]; refusals: Refusal[] } {
  const { shapes, active } = policy;
  const plans: Plan[] = [];
  const refusals: Refusal[] = [];
  for (const request of analysis.roots) {
    const { responseKey, root, fields } = request;
    if (!request.args) continue;
    if (!root) {
      refusals.push(refuse('FORBIDDEN', 'Not granted', { responseKey }));
      continue;
    }
    const args: RootArgs = request.args;
    const shape = shapes.get(root.datasetId)!;
    const aggregate = root.kind === 'AGGREGATE';
    const groupBy = aggregate ? (args.groupBy ?? []) : [];
    const audit = {
      action: aggregate ? AuditAction.AGGREGATE : AuditAction.QUERY,
      purpose: args.purpose,
      datasetId: root.datasetId,
      fields: aggregate ? [...new Set(groupBy)].sort() : fields,
    };
    const first = aggregate ? 0 : (args.first ?? 100);
    if (first < 0 || first > MAX_FIRST) {
      refusals.push(refuse('BAD_USER_INPUT', `first must be between 0 and ${MAX_FIRST}`, { responseKey }));
      continue;
    }
    const offset = args.after == null || aggregate ? 0 : decodeCursor(args.after);
    if (offset === null) {
      refusals.push(refuse('BAD_USER_INPUT', 'after is not a cursor this API returned', { responseKey }));
      continue;
    }
    if (new Set(groupBy).size !== groupBy.length) {
      refusals.push(refuse('BAD_USER_INPUT', 'groupBy names a field more than once', { responseKey }));
      continue;
    }
    const candidates = active.filter(
      (a) => a.purposes.includes(args.purpose) && a.grants.has(root.datasetId),
    );
    let agreement: ActiveAgreement | undefined;
    if (args.agreement != null) {
      agreement = candidates.find((a) => a.id === args.agreement);
      if (!agreement) {
        refusals.push(
          refuse(
            'FORBIDDEN',
            'No active agreement of your agency with that id grants this dataset for this purpose',
            {
              responseKey,
              audit,
            },
          ),
        );
        continue;
      }
    } else if (candidates.length === 1) {
      agreement = candidates[0];
    } else if (candidates.length === 0) {
      refusals.push(
        refuse('FORBIDDEN', 'No active agreement grants this dataset for this purpose', {
          responseKey,
          audit,
        }),
      );
      continue;
    } else {
      refusals.push(
        refuse(
          'BAD_USER_INPUT',
          'Several active agreements grant this dataset for this purpose: name one with agreement',
          {
            responseKey,
          },
        ),
      );
      continue;
    }
    const grant = agreement.grants.get(root.datasetId)!;
    const orderBy = (args.orderBy ?? []).map((o) => ({ field: o.field, direction: o.direction ?? 'ASC' }));
    const whereFields = whereFieldNames(args.where ?? null);
    const decision = checkRequest(grant, {
      kind: root.kind,
      fields,
      whereFields,
      orderFields: orderBy.map((o) => o.field),
      groupBy,
    });
    const auditChosen = { ...audit, agreementId: agreement.id, agreementVersion: agreement.version };
    if (!decision.allowed) {
      refusals.push(refuse('FORBIDDEN', decision.reason, { responseKey, audit: auditChosen }));
      continue;
    }
    if (aggregate) {
      // Few names where only counts are granted: each extra name doubles the tables whose patterns a
      // table of three names or more must check (see protectedPattern).
      const most = grant.access === GrantAccess.ROWS ? MAX_GROUP_BY_ROWS : MAX_GROUP_BY_AGGREGATE_ONLY;
      if (groupBy.length > most) {
        refusals.push(
          refuse(
            'BAD_USER_INPUT',
            `Group by at most ${most} fields under this agreement (see docs/disclosure-control.md)`,
            { responseKey },
          ),
        );
        continue;
      }
      // A filter may only pick groups: on a name not grouped by, it would count a different set of
      // people under the same key, and two such counts differ by the people it leaves out.
      const ungrouped = whereFields.filter((name) => !groupBy.includes(name));
      if (ungrouped.length) {
        refusals.push(
          refuse(
            'BAD_USER_INPUT',
            `An aggregate filters only on fields it groups by: add ${ungrouped.map((n) => JSON.stringify(n)).join(', ')} to groupBy`,
            { responseKey },
          ),
        );
        continue;
      }
    } else if (grant.access !== GrantAccess.ROWS) {
      refusals.push(
        refuse('FORBIDDEN', 'The agreement allows aggregates only', { responseKey, audit: auditChosen }),
      );
      continue;
    }
    plans.push({
      kind: root.kind,
      responseKey,
      root,
      shape,
      agreement,
      grant,
      purpose: args.purpose,
      fields,
      columns: request.columns,
      where: args.where ?? null,
      orderBy,
      first,
      offset,
      groupBy,
      readable: aggregate
        ? active.flatMap((a) => {
            const rows = a.grants.get(root.datasetId);
            return rows && rows.access === GrantAccess.ROWS ? [{ grant: rows, purposes: a.purposes }] : [];
          })
        : [],
    });
  }
  return { plans, refusals };
}

/**
 * The first round trip of every request: its snapshot, a time limit, and the policy stamp, which
 * any agreement change moves (see AgreementService.stamp). One simple-protocol query, three statements.
 */
const BEGIN_SNAPSHOT = `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
  SET LOCAL statement_timeout = '30s';
  SELECT stamp FROM policy_stamp WHERE id = 1`;

/** Ends a transaction and gives the connection back (destroyed if it failed); never throws. */
function end(client: PoolClient, command: 'COMMIT' | 'ROLLBACK'): Promise<void> {
  return client.query(command).then(
    () => client.release(),
    (error: Error) => client.release(error),
  );
}

/** The one statement of a page: released values built as JSON by PostgreSQL, plus the count for paging. */
export function pageSql(
  plan: Plan,
  recordReleases = false,
  recipientAgencyId = '',
): { text: string; values: unknown[] } {
  const params = new SqlParams();
  const { shape, grant } = plan;
  // Only HASH values need the agreement's key: it becomes a parameter the first time one uses it.
  const hmacKey = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  // personKey, where the grant has linkage: its parameters are added the first time it is used.
  let personKey: string | undefined;
  const options: ReleasedNameOptions = grant.linkage
    ? {
        get personKey() {
          if (!recipientAgencyId) throw new PolicyError('FORBIDDEN', 'Not granted');
          return (personKey ??= personKeySql(
            params,
            shape.id,
            recipientAgencyId,
            plan.purpose,
            `${t}.${quoteIdent(shape.keyField)}::text`,
          ));
        },
      }
    : {};
  const conditions = populationConditions(grant, shape, [plan.purpose], t, params);
  if (plan.where) conditions.push(whereSql(plan.where, grant, shape, t, params, hmacKey, options));
  const userOrder = plan.orderBy.length
    ? `${orderBySql(plan.orderBy, grant, shape, t, params, hmacKey)}, `
    : '';
  // Ties break on the random row id, never on a value the agreement does not release.
  const order = `${userOrder}${t}."_rid", ${t}.${quoteIdent(shape.keyField)}`;
  const floats: string[] = [];
  const json = plan.columns
    .map(([key, name]) => {
      if (
        name === PERSON_KEY &&
        plan.fields.includes(name) &&
        grant.linkage &&
        /^[_A-Za-z][_0-9A-Za-z]*$/.test(key)
      ) {
        return `'${key}', ${options.personKey}`;
      }
      // Only names authorised for this plan; keys are GraphQL names, safe inside a SQL literal.
      const released = plan.fields.includes(name) ? grant.released.get(name) : undefined;
      if (!released || !/^[a-z][a-z0-9_]*$/.test(name) || !/^[_A-Za-z][_0-9A-Za-z]*$/.test(key)) {
        throw new PolicyError('FORBIDDEN', 'Not granted');
      }
      const expression = releasedJsonExpression(released, shape, t, hmacKey);
      if (released.type === 'Float') floats.push(expression);
      return `'${key}', ${expression}`;
    })
    .join(', ');
  const first = params.add(plan.first, 'bigint');
  const limit = params.add(plan.first + 1, 'bigint');
  const offset = params.add(plan.offset, 'bigint');
  // A float that JSON has no number for (NaN, ±Infinity), flagged: GraphQL's Float refuses it.
  const odd = floats.length
    ? `, (${floats.map((f) => `${f} IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)`).join(' OR ')}) AS odd`
    : '';
  const unrepresentable = floats.length
    ? `coalesce(bool_or(s.odd) FILTER (WHERE s.ord <= ${first}), false)`
    : 'false';
  // The page is cut first (LIMIT right above the ORDER BY, so PostgreSQL keeps only the top rows as
  // it scans, instead of sorting every row the filters let through), and only its rows are then
  // numbered, in the same order (total: it ends on the unique key), and built as JSON.
  // Which records leave, by random row id, for subject access reports.
  const rids = recordReleases
    ? `, coalesce(array_agg(s.rid ORDER BY s.ord) FILTER (WHERE s.ord <= ${first}), '{}')::text AS rids`
    : '';
  const rid = recordReleases ? `, ${t}."_rid" AS rid` : '';
  const text = `SELECT count(*)::int AS n,
      coalesce(json_agg(s.j ORDER BY s.ord) FILTER (WHERE s.ord <= ${first}), '[]')::text AS nodes,
      ${unrepresentable} AS unrepresentable${rids}
    FROM (SELECT json_build_object(${json}) AS j${odd}${rid}, row_number() OVER (ORDER BY ${order}) AS ord
            FROM (SELECT ${t}.* FROM ${recordTable(shape.slug)} ${t}
                   WHERE ${conditions.length ? conditions.join(' AND ') : 'TRUE'}
                   ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}) ${t}) s`;
  return { text, values: params.values };
}

/**
 * The response of a plain operation (see {@link Splice}), written around each page's JSON text as
 * PostgreSQL built it, after the audit write: the same JSON value graphql-js would write.
 */
function spliceResponse(splice: Splice, results: Map<string, PageResult>): string {
  let out = '{"data":{';
  splice.forEach(({ responseKey, members }, i) => {
    const page = results.get(responseKey)!;
    out += `${i ? ',' : ''}${JSON.stringify(responseKey)}:{`;
    members.forEach((member, j) => {
      out += `${j ? ',' : ''}${JSON.stringify(member.key)}:`;
      if ('nodes' in member) {
        out += page.nodesJson;
        return;
      }
      const { hasNextPage, endCursor } = page.pageInfo;
      out += `{${member.pageInfo
        .map(
          ([key, name]) =>
            `${JSON.stringify(key)}:${name === 'hasNextPage' ? String(hasNextPage) : JSON.stringify(endCursor)}`,
        )
        .join(',')}}`;
    });
    out += '}';
  });
  return `${out}}}`;
}

/** The digest of a release's record list, as its audit event stores it. */
export function releaseDigest(rids: string): string {
  return createHash('sha256').update(rids).digest('hex');
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number | null {
  const match = /^o:(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : null;
}
