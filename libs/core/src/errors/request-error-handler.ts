import { HttpException } from '@nestjs/common';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BrokerError, ErrorCode, httpStatusOf } from './broker-error';
import { type PublicError, renderForUrl } from './render-error';

/** The contract code of a 4xx status. */
function codeOfStatus(status: number): ErrorCode {
  if (status === 401) return ErrorCode.UNAUTHENTICATED;
  if (status === 403) return ErrorCode.FORBIDDEN;
  if (status === 404) return ErrorCode.NOT_FOUND;
  if (status === 409) return ErrorCode.CONFLICT;
  return ErrorCode.BAD_USER_INPUT;
}

/**
 * A PostgreSQL error that input caused (a value of the wrong form, a reference to nothing, a
 * duplicate, a limit of the server): the refusal a service should have made itself, never a 500.
 */
export function databaseError(
  error: Error | undefined,
): { code: ErrorCode; message: string; reason: string } | null {
  const e: (Error & { code?: unknown; driverError?: { code?: unknown } }) | undefined = error;
  const sqlState = typeof e?.driverError?.code === 'string' ? e.driverError.code : e?.code;
  if (typeof sqlState !== 'string' || !/^[0-9A-Z]{5}$/.test(sqlState)) return null;
  if (sqlState === '23503') return { code: ErrorCode.NOT_FOUND, message: 'Not found', reason: 'NOT_PARTY' };
  if (sqlState === '23505')
    return { code: ErrorCode.CONFLICT, message: 'It exists already', reason: 'INVALID' };
  if (sqlState.startsWith('22') || sqlState.startsWith('23')) {
    return { code: ErrorCode.BAD_USER_INPUT, message: 'A value is not valid', reason: 'INVALID' };
  }
  if (sqlState.startsWith('54')) {
    return {
      code: ErrorCode.BAD_USER_INPUT,
      message: 'The request is too large or too complex',
      reason: 'LIMIT',
    };
  }
  return null;
}

/**
 * What the public sees of an error raised on an HTTP route (before a handler, or in a REST
 * handler), and its HTTP status: a refusal with its contract code and reason; null for a failure
 * of the broker itself.
 */
export function requestErrorOf(error: unknown): { status: number; error: PublicError } | null {
  if (error instanceof BrokerError) {
    return {
      status: httpStatusOf(error.code),
      error: {
        code: error.code,
        message: error.message,
        reason: error.extra.reason,
        extensions: error.extra.details !== undefined ? { details: error.extra.details } : undefined,
      },
    };
  }
  const database = error instanceof Error ? databaseError(error) : null;
  if (database) {
    return { status: httpStatusOf(database.code), error: database };
  }
  const status =
    error instanceof HttpException
      ? error.getStatus()
      : typeof (error as FastifyError | null)?.statusCode === 'number'
        ? (error as FastifyError).statusCode!
        : 500;
  if (status < 400 || status >= 500) return null;
  const tooLarge = status === 413;
  return {
    status,
    error: {
      code: codeOfStatus(status),
      message: tooLarge ? 'The request body is too large' : (error as Error).message,
      reason: tooLarge ? 'LIMIT' : undefined,
    },
  };
}

/**
 * Fastify's error handler for the whole broker: what fastify refuses before a handler runs (a body
 * that is not JSON, too large, of an unknown type) answered in the endpoint's shape with a contract
 * code and reason; anything else logged and answered as an internal error in the same shape.
 * Errors inside handlers never reach it (Nest's exception filters and GraphQL's error formatter
 * answer those). It must be installed before any route is added, since a route keeps the handler
 * of its scope at that moment; installing it is then the broker's only `setErrorHandler`.
 */
export function requestErrorHandler(logger: Logger) {
  return async (error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const refusal = requestErrorOf(error);
    if (!refusal) {
      logger.error({ err: error, url: request.url.split('?')[0] }, 'unexpected error before a handler');
    }
    const { status, error: rendered } = refusal ?? {
      status: 500,
      error: { code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'Internal error' },
    };
    return reply.status(status).send(renderForUrl(request.url, rendered));
  };
}
