import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BrokerError, httpStatusOf } from '../errors/broker-error';
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
