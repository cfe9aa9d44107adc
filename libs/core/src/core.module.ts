import { type DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { Logger } from 'pino';
import { BROKER_CONFIG, type BrokerConfig } from './config/broker-config';
import { Database } from './database/database';
import { HealthController } from './health/health.controller';
import { LOGGER } from './logging/logger';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { RedisModule } from './redis/redis.module';

/**
 * Configuration, logging, the database connection, Redis, health and metrics: what every
 * process of the broker needs. Pass `http: false` for processes without HTTP routes (the worker).
 *
 * @example CoreModule.forRoot({ config: loadConfig(), logger })
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(options: { config: BrokerConfig; logger: Logger; http?: boolean }): DynamicModule {
    const { config, logger } = options;
    return {
      module: CoreModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: config.DATABASE_URL,
          autoLoadEntities: true,
          synchronize: false,
          migrationsRun: false,
          logging: false,
          extra: { max: 20, application_name: 'data-sharing-broker' },
        }),
        RedisModule,
      ],
      controllers: options.http === false ? [] : [HealthController, MetricsController],
      providers: [
        { provide: BROKER_CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        MetricsService,
        Database,
      ],
      exports: [BROKER_CONFIG, LOGGER, MetricsService, Database],
    };
  }
}
