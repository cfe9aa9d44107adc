import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError, ErrorCode, httpStatusOf } from '../errors/broker-error';
import { renderGraphQLError, renderRestError } from '../errors/render-error';

/** Maps {@link BrokerError} to an HTTP answer on REST routes; GraphQL maps it in its error formatter. */
@Catch(BrokerError)
export class BrokerErrorFilter implements ExceptionFilter {
  catch(error: BrokerError, host: ArgumentsHost) {
    if (host.getType<string>() === 'graphql') return error;
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const rendered = {
      code: error.code,
      message: error.message,
      reason: error.extra.reason,
      extensions: error.extra.details !== undefined ? { details: error.extra.details } : undefined,
    };
    // The data plane's routes answer in GraphQL's shape, refusals made before it included.
    const graphql = /^\/data\//.test(request.url);
    void reply
      .status(httpStatusOf(error.code))
      .send(graphql ? { data: null, errors: [renderGraphQLError(rendered)] } : renderRestError(rendered));
    return undefined;
  }
}

/**
 * Nest's own HTTP exceptions (an unknown route, a method not allowed) in the contract's shape: a
 * contract code and reason, in GraphQL's shape on the data plane's routes.
 */
@Catch(HttpException)
export class HttpExceptionFilter implements ExceptionFilter {
  catch(error: HttpException, host: ArgumentsHost) {
    if (host.getType<string>() === 'graphql') return error;
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const status = error.getStatus();
    const code =
      status === 401
        ? ErrorCode.UNAUTHENTICATED
        : status === 403
          ? ErrorCode.FORBIDDEN
          : status === 404
            ? ErrorCode.NOT_FOUND
            : status === 409
              ? ErrorCode.CONFLICT
              : status < 500
                ? ErrorCode.BAD_USER_INPUT
                : ErrorCode.INTERNAL_SERVER_ERROR;
    const rendered = { code, message: error.message, reason: status === 413 ? 'LIMIT' : undefined };
    const graphql = /^\/data\//.test(request.url);
    void reply
      .status(status)
      .send(graphql ? { data: null, errors: [renderGraphQLError(rendered)] } : renderRestError(rendered));
    return undefined;
  }
}
