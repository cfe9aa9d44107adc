import { type DynamicModule, Module } from '@nestjs/common';
import { AuditModule } from '@broker/audit';
import { RetentionProcessor, RetentionScheduler } from './retention.processor';
import { RetentionService } from './retention.service';

/**
 * The retention job: its service, and for the worker its processor and scheduler. The broker has
 * the service through the RegistryModule (for tests and operators' scripts).
 *
 * @example RetentionModule.forRoot({ processors: true })
 */
@Module({})
export class RetentionModule {
  static forRoot(options: { processors: boolean }): DynamicModule {
    return {
      module: RetentionModule,
      imports: [AuditModule],
      providers: [RetentionService, ...(options.processors ? [RetentionProcessor, RetentionScheduler] : [])],
      exports: [RetentionService],
    };
  }
}
