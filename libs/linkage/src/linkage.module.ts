import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { RECORDS_DESTROYED_HOOK, RECORDS_INGESTED_HOOK } from '@broker/jobs';
import { LINKAGE_CONFIG, loadLinkageConfig } from './linkage-config';
import { LinkageRecordsDestroyed } from './linkage-records-destroyed';
import { LinkageReviewService } from './linkage-review.service';
import { LinkageEngine } from './linkage.engine';
import { LinkageProcessor } from './linkage.processor';
import { LinkageQueue } from './linkage.queue';
import { LinkageResolver } from './linkage.resolver';
import { LinkageService } from './linkage.service';
import { LinkageStore } from './linkage.store';
import { PersonKeyIndex } from './person-key-index';

/**
 * Record linkage. `api`: the control plane's operations, and the hook that schedules a run after
 * ingestion (the broker). `processors`: the BullMQ worker that executes runs (the worker). Needs
 * `JobsModule` (queues) and `AuditModule`. Global, so that ingestion and retention find their hooks
 * (retention's removes the records it destroys from the normalised data of a run under way).
 *
 * @example LinkageModule.forRoot({ api: true, processors: false })
 */
@Module({})
export class LinkageModule {
  static forRoot(options: { api: boolean; processors: boolean }): DynamicModule {
    const providers: Provider[] = [
      { provide: LINKAGE_CONFIG, useFactory: () => loadLinkageConfig() },
      LinkageStore,
      LinkageQueue,
      LinkageService,
      PersonKeyIndex,
      { provide: RECORDS_INGESTED_HOOK, useExisting: LinkageService },
      LinkageRecordsDestroyed,
      { provide: RECORDS_DESTROYED_HOOK, useExisting: LinkageRecordsDestroyed },
    ];
    if (options.api) providers.push(LinkageReviewService, LinkageResolver);
    if (options.processors) providers.push(LinkageEngine, LinkageProcessor);
    return {
      module: LinkageModule,
      global: true,
      providers,
      exports: [LinkageService, LinkageStore, PersonKeyIndex, RECORDS_INGESTED_HOOK, RECORDS_DESTROYED_HOOK],
    };
  }
}
