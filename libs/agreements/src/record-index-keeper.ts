import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { BROKER_CONFIG, type BrokerConfig, LOGGER } from '@broker/core';
import { DatasetService, type IndexCounts, logIndexCounts } from '@broker/registry';
import { AgreementService } from './agreement.service';

/**
 * Keeps the record indexes that the versions in force (their row filters' fields, and their
 * populations' partial indexes) and the stewards' declarations need: builds the missing ones, drops
 * and rebuilds one that a failed concurrent build left invalid, and drops the populations' indexes of
 * row filters no longer in force (queries cannot use it, and `IF NOT EXISTS` would keep it). Each broker passes
 * as it starts and again every `RECORD_INDEX_CHECK_MS`, off any request's path, so a build that
 * failed after an approval is repaired without a restart. A pass still running is not started again;
 * instances that pass together build each index once (the advisory lock of `buildRecordIndex`).
 */
@Injectable()
export class RecordIndexKeeper implements OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<IndexCounts | null> | undefined;

  constructor(
    private readonly agreements: AgreementService,
    private readonly datasets: DatasetService,
    @Inject(BROKER_CONFIG) private readonly config: BrokerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** A pass now, then one every `RECORD_INDEX_CHECK_MS` until the application closes. */
  start(): void {
    if (this.timer) return;
    void this.pass();
    this.timer = setInterval(() => void this.pass(), this.config.RECORD_INDEX_CHECK_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One pass over the indexes of every version in force and every declaration (a dataset asked twice
   * is checked once); resolves to its counts, or null when it could not check. Never rejects: what it
   * could not do, the next pass does.
   */
  pass(): Promise<IndexCounts | null> {
    this.running ??= this.check().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async check(): Promise<IndexCounts | null> {
    try {
      // Listed before the demands are read: an index built since (a version that came into force
      // meanwhile) is not listed, so it is never dropped as unasked for.
      const listed = await this.datasets.populationIndexNames();
      const demands = [
        ...(await this.agreements.indexesInForce()),
        ...(await this.datasets.declaredIndexes()),
      ];
      const counts = await this.datasets.ensureIndexesOf(demands);
      const dropped = await this.datasets.dropPopulationIndexesExcept(listed, demands);
      logIndexCounts(this.logger, counts);
      if (dropped) this.logger.info({ dropped }, 'indexes of row filters no longer in force dropped');
      return counts;
    } catch (error) {
      this.logger.warn({ err: error }, 'record indexes not checked; the next pass retries');
      return null;
    }
  }
}
