import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { BrokerConfig } from '@broker/core';
import { QueueName, producerConnection, workerConnection } from './queues';

/**
 * BullMQ on the broker's Redis: the queues, for producers everywhere (global). `processors` is true
 * in the worker, whose modules register the processors (linkage, retention): its connections retry
 * forever, the broker's (producers only) fail fast, as BullMQ's production guide advises.
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
        BullModule.registerQueue({ name: QueueName.LINKAGE }, { name: QueueName.RETENTION }),
      ],
      exports: [BullModule],
    };
  }
}
