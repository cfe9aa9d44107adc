import { Injectable } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, MetricsService, renderGraphQLError, renderRestError } from '@broker/core';
import { AuthService } from './auth.service';

// `/api/register` is the public register (DESIGN §4.4): anyone may read it, signed in or not.
const PROTECTED = [/^\/graphql(\/|\?|$)/, /^\/data\/graphql(\/|\?|$)/, /^\/api\/(?!register(\?|$))/];
// Exports of the data plane (POST /data/export), signed in like /data/graphql.
PROTECTED.push(/^\/data\/export(\/|\?|$)/);

const DATA_GRAPHQL = /^\/data\/graphql(\?|$)/;

/** Rejects unauthenticated requests to the APIs before their bodies are read. */
@Injectable()
export class AuthHook {
  constructor(
    private readonly auth: AuthService,
    private readonly metrics: MetricsService,
  ) {}

  /** Installs the `onRequest` hook on the broker's fastify instance. */
  register(fastify: FastifyInstance) {
    fastify.addHook('onRequest', async (request, reply) => this.onRequest(request, reply));
  }

  private async onRequest(request: FastifyRequest, reply: FastifyReply) {
    if (!PROTECTED.some((pattern) => pattern.test(request.url))) return;
    if (request.method === 'OPTIONS') return;
    if (request.method === 'GET' && !request.url.startsWith('/api/')) {
      // GraphQL over GET would put queries and variables in URLs, where proxies and logs keep them.
      await reply
        .status(405)
        .header('allow', 'POST')
        // A browser (Accept: text/html) gets GraphiQL at the same URL instead.
        .header('vary', 'accept')
        .send({
          data: null,
          errors: [
            renderGraphQLError({
              code: ErrorCode.BAD_USER_INPUT,
              message: 'Send GraphQL requests with POST',
            }),
          ],
        });
      return;
    }
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // The data plane checks a remembered analyst's key in the statement that reads the data, in the
    // same snapshot (or asks before anything else): one round trip fewer, and a revoked key still
    // stops at its next request on every instance.
    const claimed =
      match && request.method === 'POST' && DATA_GRAPHQL.test(request.url)
        ? this.auth.remembered(match[1])
        : null;
    if (claimed) {
      request.principal = claimed;
      request.principalUnverified = true;
      return;
    }
    const principal = match ? await this.auth.authenticate(match[1]) : null;
    if (principal) {
      request.principal = principal;
      return;
    }
    const message = match
      ? 'The API key is not valid'
      : 'A valid API key is required (Authorization: Bearer <key>)';
    const isGraphql = !request.url.startsWith('/api/');
    // Counted, not audited: an unauthenticated caller is no one the audit log could name.
    this.metrics.unauthenticated.inc({
      endpoint: request.url.startsWith('/data/') ? '/data/graphql' : isGraphql ? '/graphql' : '/api',
    });
    await reply
      .status(401)
      .header('www-authenticate', 'Bearer')
      .send(
        isGraphql
          ? { data: null, errors: [renderGraphQLError({ code: ErrorCode.UNAUTHENTICATED, message })] }
          : renderRestError({ code: ErrorCode.UNAUTHENTICATED, message }),
      );
  }
}
