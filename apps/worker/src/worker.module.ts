import { type DynamicModule, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { AuditModule } from '@broker/audit';
import { type BrokerConfig, CoreModule } from '@broker/core';
import { JobsModule } from '@broker/jobs';
import { LinkageModule } from '@broker/linkage';
import { RetentionModule } from '@broker/registry';

/** The worker process: BullMQ processors (linkage, retention), no HTTP routes. */
@Module({})
export class WorkerModule {
  static forRoot(config: BrokerConfig, logger: Logger): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        CoreModule.forRoot({ config, logger, http: false }),
        AuditModule,
        JobsModule.forRoot(config, { processors: true }),
        LinkageModule.forRoot({ api: false, processors: true }),
        RetentionModule.forRoot({ processors: true }),
      ],
    };
  }
}
