import { BullModule } from '@nestjs/bullmq';
import { type DynamicModule, Module } from '@nestjs/common';
import type { BrokerConfig } from '@broker/core';
import { MaintenanceProcessor } from './maintenance.processor';
import { QueueName, workerConnection } from './queues';

/** BullMQ on the broker's Redis: queues for producers, and processors when `processors` is true. */
@Module({})
export class JobsModule {
  static forRoot(config: BrokerConfig, options: { processors: boolean }): DynamicModule {
    return {
      module: JobsModule,
      imports: [
        BullModule.forRoot({ connection: workerConnection(config.REDIS_URL), prefix: config.QUEUE_PREFIX }),
        BullModule.registerQueue({ name: QueueName.MAINTENANCE }),
      ],
      providers: options.processors ? [MaintenanceProcessor] : [],
      exports: [BullModule],
    };
  }
}
