import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
  type ValueNode,
  type ValidationContext,
  getOperationAST,
  getVariableValues,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import { withoutSuggestions } from '@broker/core';
import { refusal } from '@broker/policy';
import { authorise } from './authorise';
import type { DataPlaneRefusal, DataPlaneRequest, Plan, RefusalAudit } from './plan';
import type { CallerPolicy } from './policy-cache.service';
import { type DocumentCache, type Splice, analyse, freezeDeep } from './request-analysis';
import { classify } from './response';

/** What {@link DataPlaneService.decide} concluded about a request. */
export type Decision =
  | { kind: 'invalid'; message: string }
  | { kind: 'refused'; refusals: DataPlaneRefusal[]; status: number }
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

/**
 * The in-process decision on a request that passed {@link precheck}, under the caller's policy:
 * parse, validate, coerce variables, and authorise every root field into a plan. No I/O.
 */
export function decideRequest(
  documents: DocumentCache,
  policy: CallerPolicy,
  request: DataPlaneRequest,
): Decision {
  const { query, variables, operationName } = request as {
    query: string;
    variables?: Record<string, unknown> | null;
    operationName?: string | null;
  };
  if (!policy.schema) {
    return {
      kind: 'refused',
      refusals: [refusal('NO_AGREEMENT_IN_FORCE', 'No active agreement grants your agency any data')],
      status: 200,
    };
  }
  const { schema } = policy.schema;

  // Parsing and validation depend only on the schema and the query text: done once per pair.
  let cached = documents.get(schema, query);
  if (!cached) {
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: MAX_TOKENS, noLocation: false });
    } catch (error) {
      // Past the token limit (graphql-js's own message names it), or nested past the stack: LIMIT.
      const refused = classify(
        error instanceof GraphQLError ? error : new GraphQLError((error as Error).message),
      );
      if (refused.reason === 'LIMIT') return { kind: 'refused', refusals: [refused], status: 400 };
      return { kind: 'invalid', message: withoutSuggestions((error as Error).message) };
    }
    const validationErrors = validate(schema, document, RULES, { maxErrors: 20 });
    if (validationErrors.length) {
      const asked = askedIn(document, operationName ?? null, variables, policy);
      return {
        kind: 'refused',
        refusals: validationErrors.map((e) => withAsked(classify(e, policy), asked)),
        status: 400,
      };
    }
    cached = documents.set(schema, query, document);
  }
  const { document } = cached;
  const name = operationName ?? null;
  let found = cached.operations.get(name);
  if (!found) {
    const operation = getOperationAST(document, name);
    if (!operation) return { kind: 'invalid', message: 'Name the operation to run with operationName' };
    // graphql-js 16 validates no operation type the schema lacks: the data plane has queries only.
    if (operation.operation !== OperationTypeNode.QUERY) {
      return {
        kind: 'invalid',
        message: `The data plane answers queries only, not a ${operation.operation}`,
      };
    }
    // Without variables, what the operation asks for is fixed: analysed once, authorised every time.
    const analysis = operation.variableDefinitions?.length
      ? null
      : freezeDeep(analyse(policy.schema, document, operation, {}));
    found = { operation, analysis };
    cached.operations.set(name, found);
  }
  const { operation } = found;
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables ?? {});
  if (coerced.errors) {
    const asked = askedIn(document, name, variables, policy);
    return {
      kind: 'refused',
      refusals: coerced.errors.map((e) => withAsked(classify(e, policy), asked)),
      status: 400,
    };
  }
  const variableValues = coerced.coerced;
  const analysis = found.analysis ?? analyse(policy.schema, document, operation, variableValues);

  const { plans, refusals } = authorise(analysis, policy);
  if (refusals.length) return { kind: 'refused', refusals, status: 200 };
  return { kind: 'run', schema, document, operation, variableValues, plans, splice: analysis.splice };
}

/**
 * What a request refused before it was analysed (by validation, or its variables) asked for, for its
 * DENY events (DESIGN §4: what was asked, never a filter value): the dataset of its first root field
 * that names one of the caller's datasets, the agreement it names where it is the caller's, the
 * purpose it names (one the caller holds; else, if the catalog defines it, the recorder records it),
 * and the names it asked for.
 */
export function askedIn(
  document: DocumentNode,
  operationName: string | null,
  variables: Record<string, unknown> | null | undefined,
  policy: CallerPolicy,
): RefusalAudit {
  const operation = getOperationAST(document, operationName);
  if (!operation) return {};
  const value = (node: ValueNode | undefined): unknown => {
    if (!node) return undefined;
    if (node.kind === Kind.VARIABLE) return variables?.[node.name.value];
    return node.kind === Kind.ENUM || node.kind === Kind.STRING ? node.value : undefined;
  };
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD) continue;
    const root = selection.name.value;
    const shape = [...policy.shapes.values()].find((s) => root === s.slug || root === `${s.slug}_aggregate`);
    if (!shape) continue;
    const argument = (name: string) => value(selection.arguments?.find((a) => a.name.value === name)?.value);
    const purpose = argument('purpose');
    // The agreement named, or the only one that grants the dataset for the purpose.
    const named = argument('agreement');
    const granting = policy.active.filter(
      (a) => a.grants.has(shape.id) && (typeof purpose !== 'string' || a.purposes.includes(purpose)),
    );
    const agreement =
      named === undefined || named === null
        ? granting.length === 1
          ? granting[0]
          : undefined
        : granting.find((a) => a.id === named);
    const names = [
      ...new Set(
        (selection.selectionSet?.selections ?? []).flatMap((connection) =>
          connection.kind === Kind.FIELD && connection.name.value === 'nodes'
            ? (connection.selectionSet?.selections ?? []).flatMap((f) =>
                f.kind === Kind.FIELD ? [f.name.value] : [],
              )
            : [],
        ),
      ),
    ].sort();
    return {
      datasetId: shape.id,
      ...(typeof purpose !== 'string'
        ? {}
        : policy.active.some((a) => a.purposes.includes(purpose))
          ? { purpose }
          : { purposeAsked: purpose }),
      ...(agreement ? { agreementId: agreement.id, agreementVersion: agreement.version } : {}),
      ...(names.length ? { fields: names.slice(0, 100) } : {}),
    };
  }
  return {};
}

/**
 * A refusal with what its request asked for; the name it was refused for first among the fields. A
 * LIMIT stays as it is: limits merge per caller and minute (DataPlaneRecorder.refused), and an
 * agreement named would keep them apart.
 */
function withAsked(refused: DataPlaneRefusal, asked: RefusalAudit): DataPlaneRefusal {
  if (!asked.datasetId || refused.reason === 'LIMIT') return refused;
  const fields = refused.field ? [...new Set([refused.field, ...(asked.fields ?? [])])] : asked.fields;
  return { ...refused, audit: { ...asked, ...(fields ? { fields } : {}), ...refused.audit } };
}
