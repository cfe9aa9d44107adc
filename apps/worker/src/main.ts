import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import Redis from 'ioredis';
import type { Logger } from 'pino';
import { PinoNestLogger, createLogger, loadConfigOrExit, migrate } from '@broker/core';
import { loadLinkageConfig } from '@broker/linkage';
import { WorkerModule } from './worker.module';

async function main() {
  const config = loadConfigOrExit(process.env, loadLinkageConfig);
  const logger = createLogger(config.LOG_LEVEL, 'worker');
  // BullMQ's production guide: a stray rejection is logged, not fatal; an uncaught exception leaves
  // the process in an unknown state, so it exits and the supervisor starts a fresh one (its jobs
  // stall and are taken over by the other workers).
  process.on('unhandledRejection', (reason) => {
    logger.error({ error: reason instanceof Error ? reason.message : String(reason) }, 'unhandled rejection');
  });
  process.on('uncaughtException', (error) => {
    logger.fatal({ error: error.message }, 'uncaught exception; exiting');
    process.exit(1);
  });
  await migrate(config.DATABASE_URL);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, logger), {
    logger: new PinoNestLogger(logger.child({ component: 'nest' })),
  });
  // On SIGTERM or SIGINT, BullMQ workers finish their current job before the process exits.
  app.enableShutdownHooks();
  await app.init();
  await warnIfRedisEvicts(config.REDIS_URL, logger);
  logger.info('worker ready');
}

/** BullMQ's production guide: Redis must not evict keys, or queued jobs vanish silently. */
async function warnIfRedisEvicts(redisUrl: string, logger: Logger) {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
    if (reply[1] && reply[1] !== 'noeviction') {
      logger.warn(
        { policy: reply[1] },
        'Redis maxmemory-policy should be noeviction, or BullMQ may lose jobs',
      );
    }
  } catch {
    // CONFIG may be disabled on managed Redis; nothing to check then.
  } finally {
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`worker failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
