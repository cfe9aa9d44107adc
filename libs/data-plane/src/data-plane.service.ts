import { Inject, Injectable } from '@nestjs/common';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type DocumentNode,
  type ExecutionResult,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type ValidationContext,
  defaultFieldResolver,
  execute,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService } from '@broker/audit';
import { type RequestContext, Role } from '@broker/auth';
import { LOGGER, pgPool, quoteIdent } from '@broker/core';
import {
  type CompiledGrant,
  type DataWhere,
  GrantAccess,
  PolicyError,
  SqlParams,
  checkRequest,
  orderBySql,
  releasedJsonExpression,
  rowFilterSql,
  whereFieldNames,
  whereSql,
} from '@broker/policy';
import { type DatasetShapeRecord, recordTable } from '@broker/registry';
import { type ActiveAgreement, type CallerSchema, MAX_FIRST, type RootField } from './caller-schema';
import { childFieldNames, collectFields } from './operation-fields';
import { PolicyCache } from './policy-cache.service';

/** The body of a data-plane request. */
export interface DataPlaneRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

/** An HTTP answer: GraphQL-shaped body and its status. */
export interface DataPlaneResponse {
  status: number;
  body: ExecutionResult | { data: null; errors: ReturnType<GraphQLError['toJSON']>[] };
}

/** One root field of a request, authorised and ready to run as one SQL statement. */
interface Plan {
  responseKey: string;
  root: RootField;
  shape: DatasetShapeRecord;
  agreement: ActiveAgreement;
  grant: CompiledGrant;
  purpose: string;
  fields: string[];
  where: DataWhere | null;
  orderBy: { field: string; direction: 'ASC' | 'DESC' }[];
  first: number;
  offset: number;
}

interface Refusal {
  code: 'FORBIDDEN' | 'BAD_USER_INPUT';
  message: string;
  responseKey?: string;
  audit?: {
    purpose?: string;
    datasetId?: string;
    agreementId?: string;
    agreementVersion?: number;
    fields?: string[];
  };
}

interface PageResult {
  nodes: unknown[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

const MAX_QUERY_LENGTH = 100_000;
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
  /^(Cannot query field|Unknown argument|Unknown type|Field "[^"]*" is not defined by type)|does not exist in "[A-Za-z0-9_]+" enum/;

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
  constructor(
    private readonly policies: PolicyCache,
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Answers one request. */
  async handle(ctx: RequestContext, request: DataPlaneRequest): Promise<DataPlaneResponse> {
    const { principal } = ctx;
    if (principal.role !== Role.ANALYST || !principal.agencyId) {
      return this.refused(ctx, [refuse('FORBIDDEN', 'Only analysts query records')]);
    }
    const { query, variables, operationName } = request ?? {};
    if (typeof query !== 'string' || !query.trim()) {
      return this.invalid('The request needs a GraphQL query string');
    }
    if (query.length > MAX_QUERY_LENGTH) return this.invalid('The query is too large');
    if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
      return this.invalid('variables must be an object');
    }
    if (operationName != null && typeof operationName !== 'string') {
      return this.invalid('operationName must be a string');
    }

    const policy = await this.policies.forAgency(principal.agencyId, new Date());
    if (!policy.schema) {
      return this.refused(ctx, [refuse('FORBIDDEN', 'No active agreement grants your agency any data')]);
    }
    const { schema } = policy.schema;

    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: MAX_TOKENS, noLocation: false });
    } catch (error) {
      const message =
        error instanceof GraphQLError && /token/i.test(error.message)
          ? 'The query is too large'
          : (error as Error).message;
      return this.invalid(message.replace(DID_YOU_MEAN, ''));
    }
    const validationErrors = validate(schema, document, RULES, { maxErrors: 20 });
    if (validationErrors.length) {
      const refusals = validationErrors.map((e) => {
        const message = e.message.replace(DID_YOU_MEAN, '');
        return OUTSIDE_SCHEMA.test(e.message)
          ? refuse('FORBIDDEN', message)
          : refuse(
              'BAD_USER_INPUT',
              /exceed|limit|cost|depth|alias|directive/i.test(message)
                ? 'The query is too large or too complex'
                : message,
            );
      });
      return this.refused(ctx, refusals, 400);
    }
    const operation = getOperationAST(document, operationName ?? null);
    if (!operation) return this.invalid('Name the operation to run with operationName');
    const coerced = getVariableValues(
      schema,
      operation.variableDefinitions ?? [],
      (variables as Record<string, unknown>) ?? {},
    );
    if (coerced.errors)
      return this.invalid(coerced.errors.map((e) => e.message.replace(DID_YOU_MEAN, '')).join('; '));
    const variableValues = coerced.coerced;

    const { plans, refusals } = this.plan(
      policy.schema,
      policy.shapes,
      policy.active,
      document,
      operation,
      variableValues,
    );
    if (refusals.length) return this.refused(ctx, refusals);

    let results: Map<string, PageResult & { rowCount: number }>;
    try {
      results = await this.run(plans);
    } catch (error) {
      if (error instanceof PolicyError) return this.refused(ctx, [refuse(error.code, error.message)]);
      throw error;
    }
    try {
      await this.recordReleases(ctx, plans, results);
    } catch (error) {
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

    const result = await execute({
      schema,
      document,
      operationName: operation.name?.value ?? null,
      variableValues,
      rootValue: {},
      fieldResolver: (source, args, context, info) =>
        info.parentType === schema.getQueryType()
          ? results.get(String(info.path.key))
          : defaultFieldResolver(source, args, context, info),
    });
    if (result.errors?.length) {
      this.logger.error(
        { errors: result.errors.map((e) => e.message), requestId: ctx.requestId },
        'data-plane execution error',
      );
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
    return { status: 200, body: { data: result.data } };
  }

  /** Authorises every root field of the operation; nothing runs unless all are allowed. */
  private plan(
    callerSchema: CallerSchema,
    shapes: Map<string, DatasetShapeRecord>,
    active: ActiveAgreement[],
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Record<string, unknown>,
  ): { plans: Plan[]; refusals: Refusal[] } {
    const fragments: Record<string, FragmentDefinitionNode> = Object.create(null) as Record<
      string,
      FragmentDefinitionNode
    >;
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
    }
    const queryType = callerSchema.schema.getQueryType()!;
    const plans: Plan[] = [];
    const refusals: Refusal[] = [];
    for (const [responseKey, fieldNodes] of collectFields(operation.selectionSet, fragments, variables)) {
      const name = fieldNodes[0].name.value;
      if (name.startsWith('__')) continue;
      const root = callerSchema.roots.get(name);
      const fieldDef = queryType.getFields()[name];
      if (!root || !fieldDef) {
        refusals.push(refuse('FORBIDDEN', 'Not granted', { responseKey }));
        continue;
      }
      const shape = shapes.get(root.datasetId)!;
      const args = getArgumentValues(fieldDef, fieldNodes[0], variables) as {
        purpose: string;
        agreement?: string | null;
        where?: DataWhere | null;
        orderBy?: { field: string; direction?: 'ASC' | 'DESC' }[] | null;
        first?: number | null;
        after?: string | null;
      };
      const fields = childFieldNames(fieldNodes, 'nodes', fragments, variables);
      const audit = { purpose: args.purpose, datasetId: root.datasetId, fields };
      const first = args.first ?? 100;
      if (first < 0 || first > MAX_FIRST) {
        refusals.push(refuse('BAD_USER_INPUT', `first must be between 0 and ${MAX_FIRST}`, { responseKey }));
        continue;
      }
      const offset = args.after == null ? 0 : decodeCursor(args.after);
      if (offset === null) {
        refusals.push(refuse('BAD_USER_INPUT', 'after is not a cursor this API returned', { responseKey }));
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
      const decision = checkRequest(grant, {
        kind: 'ROWS',
        fields,
        whereFields: whereFieldNames(args.where ?? null),
        orderFields: orderBy.map((o) => o.field),
      });
      const auditChosen = { ...audit, agreementId: agreement.id, agreementVersion: agreement.version };
      if (!decision.allowed) {
        refusals.push(refuse('FORBIDDEN', decision.reason, { responseKey, audit: auditChosen }));
        continue;
      }
      if (grant.access !== GrantAccess.ROWS) {
        refusals.push(
          refuse('FORBIDDEN', 'The agreement allows aggregates only', { responseKey, audit: auditChosen }),
        );
        continue;
      }
      plans.push({
        responseKey,
        root,
        shape,
        agreement,
        grant,
        purpose: args.purpose,
        fields,
        where: args.where ?? null,
        orderBy,
        first,
        offset,
      });
    }
    return { plans, refusals };
  }

  /** Runs every plan, one SQL statement each, in one read-only snapshot. */
  private async run(plans: Plan[]): Promise<Map<string, PageResult & { rowCount: number }>> {
    const results = new Map<string, PageResult & { rowCount: number }>();
    if (!plans.length) return results;
    const client = await pgPool(this.dataSource).connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await client.query(`SET LOCAL statement_timeout = '30s'`);
      for (const plan of plans) {
        const { text, values } = pageSql(plan);
        const { rows } = await client.query<{ n: number; nodes: string }>(text, values);
        const n = rows[0].n;
        const returned = Math.min(n, plan.first);
        results.set(plan.responseKey, {
          nodes: JSON.parse(rows[0].nodes) as unknown[],
          pageInfo: {
            hasNextPage: n > plan.first,
            endCursor: returned ? encodeCursor(plan.offset + returned) : null,
          },
          rowCount: returned,
        });
      }
      await client.query('COMMIT');
      return results;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  private async recordReleases(
    ctx: RequestContext,
    plans: Plan[],
    results: Map<string, { rowCount: number }>,
  ) {
    if (!plans.length) return;
    await this.dataSource.transaction(async (manager) => {
      for (const plan of plans) {
        await this.audit.append(
          {
            actorUserId: ctx.principal.userId,
            actorAgencyId: ctx.principal.agencyId,
            action: AuditAction.QUERY,
            decision: 'ALLOW',
            purpose: plan.purpose,
            datasetId: plan.shape.id,
            agreementId: plan.agreement.id,
            agreementVersion: plan.agreement.version,
            fields: plan.fields,
            rowCount: results.get(plan.responseKey)!.rowCount,
          },
          manager,
        );
      }
    });
  }

  private async refused(ctx: RequestContext, refusals: Refusal[], status = 200): Promise<DataPlaneResponse> {
    const denials = refusals.filter((r) => r.code === 'FORBIDDEN');
    if (denials.length) {
      try {
        await this.dataSource.transaction(async (manager) => {
          for (const denial of denials) {
            await this.audit.append(
              {
                actorUserId: ctx.principal.userId,
                actorAgencyId: ctx.principal.agencyId,
                action: AuditAction.QUERY,
                decision: 'DENY',
                reason: denial.message.slice(0, 500),
                ...denial.audit,
              },
              manager,
            );
          }
        });
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

/** The one statement of a page: released values built as JSON by PostgreSQL, plus the count for paging. */
function pageSql(plan: Plan): { text: string; values: unknown[] } {
  const params = new SqlParams();
  const { shape, grant } = plan;
  // Only HASH values need the agreement's key: it becomes a parameter the first time one uses it.
  const key = params.lazy(plan.agreement.hmacKey, 'bytea');
  const t = 't';
  const conditions: string[] = [];
  if (grant.rowFilter) conditions.push(rowFilterSql(grant.rowFilter, shape, t, params));
  if (plan.where) conditions.push(whereSql(plan.where, grant, shape, t, params, key));
  const userOrder = plan.orderBy.length ? `${orderBySql(plan.orderBy, grant, shape, t, params, key)}, ` : '';
  // Ties break on the random row id, never on a value the agreement does not release.
  const order = `${userOrder}${t}."_rid", ${t}.${quoteIdent(shape.keyField)}`;
  const json = plan.fields
    .map((name) => {
      if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new PolicyError('FORBIDDEN', 'Not granted');
      return `'${name}', ${releasedJsonExpression(grant.released.get(name)!, shape, t, key)}`;
    })
    .join(', ');
  const last = params.add(plan.offset + plan.first, 'bigint');
  const limit = params.add(plan.first + 1, 'bigint');
  const offset = params.add(plan.offset, 'bigint');
  const text = `SELECT count(*)::int AS n,
      coalesce(json_agg(s.j ORDER BY s.ord) FILTER (WHERE s.ord <= ${last}), '[]')::text AS nodes
    FROM (SELECT json_build_object(${json}) AS j, row_number() OVER (ORDER BY ${order}) AS ord
            FROM ${recordTable(shape.slug)} ${t}
           WHERE ${conditions.length ? conditions.join(' AND ') : 'TRUE'}
           ORDER BY ${order} LIMIT ${limit} OFFSET ${offset}) s`;
  return { text, values: params.values };
}

function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

function decodeCursor(cursor: string): number | null {
  const match = /^o:(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? Number(match[1]) : null;
}
