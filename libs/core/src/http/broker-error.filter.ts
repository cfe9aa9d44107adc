import { type ArgumentsHost, Catch, type ExceptionFilter, Inject } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ErrorCode } from '../errors/broker-error';
import { renderForUrl } from '../errors/render-error';
import { requestErrorOf } from '../errors/request-error-handler';
import { LOGGER } from '../logging/logger';

/**
 * Every error a REST handler raises, answered as fastify's error handler answers errors raised
 * before a handler (see requestErrorOf, the one mapping of both): a refusal with its contract code
 * and reason, in GraphQL's shape on the data plane's routes; a failure of the broker logged and
 * answered in the same shape. GraphQL maps errors in its own formatter.
 */
@Catch()
export class ContractErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(error: unknown, host: ArgumentsHost) {
    if (host.getType<string>() === 'graphql') return error;
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    const refusal = requestErrorOf(error);
    if (!refusal) {
      this.logger.error({ err: error, url: request.url.split('?')[0] }, 'unexpected error in a REST handler');
    }
    const { status, error: rendered } = refusal ?? {
      status: 500,
      error: { code: ErrorCode.INTERNAL_SERVER_ERROR, message: 'Internal error' },
    };
    void reply.status(status).send(renderForUrl(request.url, rendered));
    return undefined;
  }
}
