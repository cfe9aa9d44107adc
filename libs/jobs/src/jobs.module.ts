import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { BrokerConfig } from '@broker/core';
import { MaintenanceProcessor } from './maintenance.processor';
import { QueueName, producerConnection, workerConnection } from './queues';

/**
 * BullMQ on the broker's Redis: the queues, for producers everywhere (global), and the maintenance
 * processor when `processors` is true (the worker). Producers connect with fail-fast options,
 * workers with retry-forever ones, as BullMQ's production guide advises.
 */
@Module({})
export class JobsModule {
  static forRoot(config: BrokerConfig, options: { processors: boolean }): DynamicModule {
    const connection = options.processors
      ? workerConnection(config.REDIS_URL)
      : producerConnection(config.REDIS_URL);
    return {
      module: JobsModule,
      global: true,
      imports: [
        BullModule.forRoot({ connection, prefix: config.QUEUE_PREFIX }),
        BullModule.registerQueue(
          { name: QueueName.MAINTENANCE },
          { name: QueueName.LINKAGE },
          { name: QueueName.RETENTION },
        ),
      ],
      providers: options.processors ? [MaintenanceProcessor] : [],
      exports: [BullModule],
    };
  }
}
