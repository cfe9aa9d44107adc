import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { type FastifyReply, type FastifyRequest, LogController, errorCodes } from 'fastify';
import type { Logger } from 'pino';
import { RecordIndexKeeper } from '@broker/agreements';
import { RefusalAuditHook } from '@broker/audit';
import { AuthHook } from '@broker/auth';
import {
  type BrokerConfig,
  MetricsService,
  PinoNestLogger,
  migrate,
  redactUrl,
  requestErrorHandler,
} from '@broker/core';
import { STREAMED_CONTENT_TYPES, UserService } from '@broker/registry';
import { BrokerModule } from './broker.module';
import { rewriteGraphiqlUrl } from './graphiql';

/** The largest body of a data-plane request (its query is at most 100,000 characters). */
const DATA_PLANE_MAX_BYTES = 1024 * 1024;

/**
 * Nest's fastify adapter, except that the broker's error handler is fastify's only one. A route keeps
 * the error handler its scope had when it was added, and Nest adds its routes before it installs its
 * own handler, which would then serve unmatched URLs only and make fastify warn of an override in
 * the same scope (FSTWRN004). The broker installs `requestErrorHandler` before any route instead,
 * so every route and unmatched URL answers errors before a handler the same way; Nest's exception
 * filters still answer every error raised in a handler, and its not-found handler stays.
 */
class BrokerFastifyAdapter extends FastifyAdapter {
  override setErrorHandler(): ReturnType<FastifyAdapter['setErrorHandler']> {
    return this.getInstance();
  }
}

/** How a broker is built beyond its configuration. */
export interface BrokerOptions {
  /** The built admin UI served at `/admin/` (default: `dist/admin`, where `npm run build` puts it). */
  adminUiDir?: string;
}

/**
 * One log line per request, written when it completes, with the request's id, method and path
 * (fastify writes two: one as it arrives, one as it completes). Errors and cut streams are logged as
 * fastify logs them.
 */
class RequestLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/**
 * Builds a ready broker: database created and migrated, bootstrap operator ensured, routes
 * registered. `main.ts` listens on it; tests inject requests into it.
 */
export async function createBroker(
  config: BrokerConfig,
  logger: Logger,
  options: BrokerOptions = {},
): Promise<NestFastifyApplication> {
  const ran = await migrate(config.DATABASE_URL);
  if (ran.length)
    logger.info({ migrations: ran, database: redactUrl(config.DATABASE_URL) }, 'ran migrations');

  const adapter = new BrokerFastifyAdapter({
    loggerInstance: logger.child({ component: 'http' }),
    logController: new RequestLog(),
    bodyLimit: config.GRAPHQL_MAX_BYTES,
    // Long ids reach the routes, which answer them as ids that do not exist.
    routerOptions: { maxParamLength: 1000 },
    trustProxy: config.TRUST_PROXY,
    // A browser opening /graphql or /data/graphql gets GraphiQL (see graphiql.ts).
    rewriteUrl: rewriteGraphiqlUrl,
  });
  // Before Nest adds a route (see BrokerFastifyAdapter).
  adapter.getInstance().setErrorHandler(requestErrorHandler(logger));
  const app = await NestFactory.create<NestFastifyApplication>(
    BrokerModule.forRoot(config, logger, options.adminUiDir),
    adapter,
    {
      logger: new PinoNestLogger(logger.child({ component: 'nest' })),
      bufferLogs: false,
    },
  );
  const fastify = app.getHttpAdapter().getInstance();
  // Bodies per route: the control plane takes GRAPHQL_MAX_BYTES (ingestRecords carries records);
  // a data-plane request is a query and its variables; uploads stream under INGEST_MAX_BYTES.
  fastify.addHook('onRoute', (route) => {
    if (/^\/data\//.test(route.url))
      route.bodyLimit = Math.min(DATA_PLANE_MAX_BYTES, config.GRAPHQL_MAX_BYTES);
  });
  // Uploads stream straight into ingestion; their size is checked as they arrive.
  fastify.addContentTypeParser(STREAMED_CONTENT_TYPES, (_request, payload, done) => done(null, payload));
  app.get(AuthHook).register(fastify);
  app.get(RefusalAuditHook).register(fastify);
  const metrics = app.get(MetricsService);
  fastify.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
  // Nest's adapter would parse form-encoded bodies too: no endpoint of the broker takes them (a
  // request is JSON, CSV or NDJSON), so a form's body is refused as an unsupported media type (415),
  // before anything runs. Set before init, where Nest would add its own parser for the type.
  app.useBodyParser('application/x-www-form-urlencoded', {}, (_request, _body, done) =>
    done(new errorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE('application/x-www-form-urlencoded')),
  );
  app.enableShutdownHooks();
  await app.init();
  await fastify.ready();
  // Before any request: the accounts that predate the chain's vouching for accounts are vouched for
  // as found, once (see the accounts-vouched migration), then the bootstrap operator, audited.
  const users = app.get(UserService);
  await users.vouchFound();
  await users.ensureBootstrapOperator(config.BROKER_BOOTSTRAP_TOKEN);
  // Off the start-up path, and again every RECORD_INDEX_CHECK_MS: the record indexes the versions in
  // force and the stewards' declarations need are built where missing, and again where a concurrent
  // build failed (safe beside other instances doing the same).
  app.get(RecordIndexKeeper).start();
  return app;
}
