import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import { BrokerError, ErrorCode } from '../errors/broker-error';
import { renderGraphQLError } from '../errors/render-error';
import { databaseError } from '../errors/request-error-handler';

/**
 * Messages of limits, on the control plane and the data plane: graphql-armor's (which do not show
 * their limits), graphql-js's token limit, ours, and a document or variable nested past the stack.
 */
export const LIMIT_MESSAGE =
  /^Syntax Error: Query validation error|^Syntax Error: Document contains more tha|too large|too complex|Maximum call stack size exceeded/;

/** A GraphQL error as the broker shows it: a contract code, and no hint at names the caller may not see. */
export function toPublicError(error: GraphQLError, logger?: Logger): GraphQLError {
  const original = error.originalError;
  const options = { path: error.path, locations: error.locations };
  const rendered = (
    code: ErrorCode,
    message: string,
    reason?: string,
    extensions?: Record<string, unknown>,
  ) => {
    const json = renderGraphQLError({ code, message, reason, extensions });
    return new GraphQLError(json.message, { ...options, extensions: json.extensions });
  };
  if (original instanceof BrokerError) {
    return rendered(
      original.code,
      original.message,
      original.extra.reason,
      original.extra.details !== undefined ? { details: original.extra.details } : undefined,
    );
  }
  const transport = transportError(original);
  if (transport) return rendered(transport.code, transport.message, transport.reason);
  const database = databaseError(original);
  if (database) return rendered(database.code, database.message, database.reason);
  const code = (error.extensions?.code ?? (original as { code?: unknown } | undefined)?.code) as
    string | undefined;
  if (code && (Object.values(ErrorCode) as string[]).includes(code)) {
    return rendered(code as ErrorCode, error.message, error.extensions?.reason as string | undefined);
  }
  // Parse, validation and coercion errors carry no original error, or a GraphQLError of graphql-js.
  if (!original || original instanceof GraphQLError || isCoercionError(original)) {
    if (LIMIT_MESSAGE.test(error.message)) {
      return rendered(ErrorCode.BAD_USER_INPUT, 'The query is too large or too complex', 'LIMIT');
    }
    return rendered(ErrorCode.BAD_USER_INPUT, error.message, 'INVALID');
  }
  if (!error.path) {
    // Raised before anything ran (graphql-js's asserts on a body that is no document): the request's.
    logger?.warn({ err: original }, 'a GraphQL request that is no document');
    return rendered(ErrorCode.BAD_USER_INPUT, 'The request is not a GraphQL document', 'INVALID');
  }
  logger?.error({ err: original, path: error.path }, 'unexpected error in a GraphQL operation');
  return rendered(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal error');
}

/** Fastify's and mercurius's own refusals of a request body (too large, not JSON, no query). */
function transportError(
  error: Error | undefined,
): { status: number; code: ErrorCode; message: string; reason: string } | null {
  const e: (Error & { code?: unknown; statusCode?: unknown }) | undefined = error;
  // Fastify's and mercurius's own (a body without a query, a batch where none is allowed).
  if (
    !e ||
    typeof e.code !== 'string' ||
    !/^(FST_|MER_ERR_)/.test(e.code) ||
    typeof e.statusCode !== 'number'
  )
    return null;
  if (e.statusCode === 413) {
    return {
      status: 413,
      code: ErrorCode.BAD_USER_INPUT,
      message: 'The request body is too large',
      reason: 'LIMIT',
    };
  }
  if (e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, code: ErrorCode.BAD_USER_INPUT, message: e.message, reason: 'INVALID' };
  return null;
}

function isCoercionError(error: Error): boolean {
  // graphql-scalars and graphql-js raise TypeError while parsing a literal or variable of a scalar.
  return (
    error instanceof TypeError &&
    /^(JSONObject|DateTime|Date|Int|Float|String|Boolean|ID)\b|cannot represent|Expected/i.test(error.message)
  );
}

/** Mercurius `errorFormatter`: contract codes, 200 for execution errors, 400 for requests that never ran. */
export function mercuriusErrorFormatter(logger?: Logger) {
  return (execution: ExecutionResult & { errors: readonly GraphQLError[] }) => {
    const errors = flatten(execution.errors).map((e) => toPublicError(e, logger));
    // Errors without a path come from parsing or validation: the operation never ran.
    const neverRan = execution.data == null && errors.every((e) => !e.path);
    const refused = flatten(execution.errors)
      .map((e) => transportError(e.originalError ?? e))
      .find((t) => t !== null);
    return {
      statusCode: refused ? refused.status : neverRan ? 400 : 200,
      response: { data: execution.data ?? null, errors: errors.map((e) => e.toJSON()) },
    };
  };
}

/** Mercurius reports parse and validation failures as one error carrying the GraphQL errors. */
function flatten(errors: readonly unknown[]): GraphQLError[] {
  return errors.flatMap((e) => {
    const candidate = e instanceof GraphQLError && e.originalError ? e.originalError : e;
    const inner = (candidate as { errors?: unknown[] }).errors;
    if (Array.isArray(inner) && /^MER_ERR_GQL/.test(String((candidate as { code?: string }).code))) {
      return inner.map((i) =>
        i instanceof GraphQLError ? i : new GraphQLError(String((i as Error).message)),
      );
    }
    if (e instanceof GraphQLError) return [e];
    return [new GraphQLError(String((e as Error).message), { originalError: e as Error })];
  });
}
