import { Controller, Get, Inject, type OnModuleDestroy, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type Redis from 'ioredis';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { BROKER_CONFIG, type BrokerConfig } from '../config/broker-config';
import { Public } from '../http/public.decorator';
import { LOGGER } from '../logging/logger';
import { REDIS } from '../redis/redis.module';

type State = 'up' | 'down';

/** How long each dependency has to answer. */
export const HEALTH_TIMEOUT_MS = 2000;

/**
 * Runs a check against a deadline. The deadline is read only after the event loop's poll phase
 * (`setImmediate` runs after it): when the process was busy past the deadline, an answer that
 * arrived meanwhile is read first, so a busy broker is not mistaken for a dependency that is down.
 */
export async function probe(check: () => Promise<unknown>, timeoutMs = HEALTH_TIMEOUT_MS): Promise<State> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => setImmediate(() => reject(new Error('timeout'))), timeoutMs);
  });
  try {
    await Promise.race([check(), timeout]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/** Concurrent callers share the check in flight, so a flood of `/health` is one probe at a time. */
function singleFlight(check: () => Promise<State>): () => Promise<State> {
  let inFlight: Promise<State> | null = null;
  return () =>
    (inFlight ??= check().finally(() => {
      inFlight = null;
    }));
}

/**
 * `GET /health`: 200 when PostgreSQL and Redis both answer, 503 otherwise.
 *
 * PostgreSQL is asked on a connection of the health check's own, outside the pool requests use.
 * A burst of requests can hold every pooled connection for a while (each signed-in request looks
 * up its key; refusals append to the audit log, one at a time): a probe queued behind them
 * timed out and answered 503 while PostgreSQL was up, which would take a busy broker out of its
 * load balancer just when it is needed. Whether the pool keeps up is a question for metrics
 * (latency per route); health answers whether the dependencies do.
 */
@Controller('health')
export class HealthController implements OnModuleDestroy {
  private readonly pool: Pool;
  readonly postgres: () => Promise<State>;
  readonly redisState: () => Promise<State>;

  constructor(
    @Inject(BROKER_CONFIG) config: BrokerConfig,
    @Inject(REDIS) redis: Redis,
    @Inject(LOGGER) logger: Logger,
  ) {
    this.pool = new Pool({
      connectionString: config.DATABASE_URL,
      max: 1,
      connectionTimeoutMillis: HEALTH_TIMEOUT_MS,
      query_timeout: HEALTH_TIMEOUT_MS,
      // Kept open while a load balancer polls; closed when nobody asks.
      idleTimeoutMillis: 60_000,
      application_name: 'data-sharing-broker health',
    });
    // An idle connection that PostgreSQL closes (a restart) is dropped; the next probe reconnects.
    this.pool.on('error', (error) => logger.warn({ err: error }, 'health check connection lost'));
    this.postgres = singleFlight(() => probe(() => this.pool.query('SELECT 1')));
    this.redisState = singleFlight(() => probe(() => redis.ping()));
  }

  @Public()
  @Get()
  async health(@Res({ passthrough: true }) reply: FastifyReply) {
    const [postgres, redis] = await Promise.all([this.postgres(), this.redisState()]);
    const ok = postgres === 'up' && redis === 'up';
    void reply.status(ok ? 200 : 503);
    return { status: ok ? 'ok' : 'unavailable', postgres, redis };
  }

  async onModuleDestroy() {
    await this.pool.end();
  }
}
