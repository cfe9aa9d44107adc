import { type DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { type BrokerConfig, CoreModule } from '@broker/core';
import { JobsModule } from '@broker/jobs';

/** The worker process: BullMQ processors, no HTTP routes. */
@Module({})
export class WorkerModule {
  static forRoot(config: BrokerConfig, logger: Logger): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        CoreModule.forRoot({ config, logger, http: false }),
        JobsModule.forRoot(config, { processors: true }),
      ],
    };
  }
}
