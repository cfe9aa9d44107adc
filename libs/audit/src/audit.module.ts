import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditEventEntity } from './audit-event.entity';
import { AuditSeriesResolver } from './audit-series.resolver';
import { AuditSeriesService } from './audit-series.service';
import { AuditResolver } from './audit.resolver';
import { AuditService } from './audit.service';
import { RefusalAuditHook } from './refusal-audit.hook';
import { RefusalRecorder } from './refusal-recorder';
import { ReleaseIndexer } from './release-indexer';
import { ReleaseStaging } from './release-staging';

/** The hash-chained audit log. Global, so every library can inject {@link AuditService} to append. */
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([AuditEventEntity])],
  providers: [
    AuditService,
    AuditResolver,
    AuditSeriesService,
    AuditSeriesResolver,
    RefusalRecorder,
    RefusalAuditHook,
    ReleaseIndexer,
    ReleaseStaging,
  ],
  exports: [AuditService, RefusalRecorder, RefusalAuditHook, ReleaseIndexer, ReleaseStaging],
})
export class AuditModule {}
