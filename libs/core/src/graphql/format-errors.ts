import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Logger } from 'pino';
import { BrokerError, ErrorCode } from '../errors/broker-error';
import { renderGraphQLError, withoutSuggestions } from '../errors/render-error';

/** A GraphQL error as the broker shows it: a contract code, and no hint at names the caller may not see. */
export function toPublicError(error: GraphQLError, logger?: Logger): GraphQLError {
  const original = error.originalError;
  const options = { path: error.path, locations: error.locations };
  if (original instanceof BrokerError) {
    const rendered = renderGraphQLError({
      code: original.code,
      message: original.message,
      reason: original.extra.reason,
      extensions: original.extra.details !== undefined ? { details: original.extra.details } : undefined,
    });
    return new GraphQLError(rendered.message, { ...options, extensions: rendered.extensions });
  }
  const transport = transportError(original);
  if (transport) {
    return new GraphQLError(transport.message, { ...options, extensions: { code: transport.code } });
  }
  const code = (error.extensions?.code ?? (original as { code?: unknown } | undefined)?.code) as
    string | undefined;
  if (code && (Object.values(ErrorCode) as string[]).includes(code)) {
    return new GraphQLError(withoutSuggestions(error.message), { ...options, extensions: { code } });
  }
  // Parse, validation and coercion errors carry no original error, or a GraphQLError of graphql-js.
  if (!original || original instanceof GraphQLError || isCoercionError(original)) {
    return new GraphQLError(withoutSuggestions(error.message), {
      ...options,
      extensions: { code: ErrorCode.BAD_USER_INPUT },
    });
  }
  logger?.error({ err: original, path: error.path }, 'unexpected error in a GraphQL operation');
  return new GraphQLError('Internal error', {
    ...options,
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
  });
}

/** Fastify's own refusals of a request body (too large, not JSON, prototype poisoning). */
function transportError(
  error: Error | undefined,
): { status: number; code: ErrorCode; message: string } | null {
  const e: (Error & { code?: unknown; statusCode?: unknown }) | undefined = error;
  if (!e || typeof e.code !== 'string' || !e.code.startsWith('FST_') || typeof e.statusCode !== 'number')
    return null;
  if (e.statusCode === 413) {
    return {
      status: 413,
      code: ErrorCode.PAYLOAD_TOO_LARGE,
      message: 'The request body is larger than GRAPHQL_MAX_BYTES',
    };
  }
  if (e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, code: ErrorCode.BAD_USER_INPUT, message: e.message };
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
