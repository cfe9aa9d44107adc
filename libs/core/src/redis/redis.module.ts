import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { BROKER_CONFIG, type BrokerConfig } from '../config/broker-config';

/** Nest injection token of the shared ioredis client, used by the health check. */
export const REDIS = Symbol('REDIS');

/** One ioredis client per process, failing fast while Redis is down instead of queueing commands. */
@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [BROKER_CONFIG],
      useFactory: (config: BrokerConfig) =>
        new Redis(config.REDIS_URL, {
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          lazyConnect: false,
          retryStrategy: (times) => Math.min(times * 200, 2000),
        }),
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async onApplicationShutdown() {
    this.redis.disconnect();
    await Promise.resolve();
  }
}
