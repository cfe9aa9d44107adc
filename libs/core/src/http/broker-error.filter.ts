import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { BrokerError, httpStatusOf } from '../errors/broker-error';
import { renderRestError } from '../errors/render-error';

/** Maps {@link BrokerError} to an HTTP answer on REST routes; GraphQL maps it in its error formatter. */
@Catch(BrokerError)
export class BrokerErrorFilter implements ExceptionFilter {
  catch(error: BrokerError, host: ArgumentsHost) {
    if (host.getType<string>() === 'graphql') return error;
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    void reply.status(httpStatusOf(error.code)).send(
      renderRestError({
        code: error.code,
        message: error.message,
        reason: error.extra.reason,
        extensions: error.extra.details !== undefined ? { details: error.extra.details } : undefined,
      }),
    );
    return undefined;
  }
}
