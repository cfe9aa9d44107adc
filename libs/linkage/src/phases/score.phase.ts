import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { LinkageModel, TermFrequencies } from '../core/model';
import { termFrequenciesFromJson } from '../core/pipeline';
import { PartitionScorer, serialiseLinks } from '../core/scorer';
import type { ScoreStats } from '../linkage-run.stats';
import type { LinkageRunRow } from '../linkage.store';
import { UnitPhase, loadPartition } from './unit-phase';

/**
 * Phase 4, one unit per partition: every candidate pair of the partition weighed; writes its links
 * and its pairs nearest the threshold, with pairs and the weight histogram in the unit's statistics.
 */
export class ScorePhase extends UnitPhase {
  readonly phase = 'score' as const;
  private cachedFit: { runId: string; seen: number; model: LinkageModel; tf: TermFrequencies } | null = null;

  async execute(run: LinkageRunRow, partition: number, seen: number): Promise<boolean> {
    const { store, logger } = this.ctx;
    const t0 = Date.now();
    const { model, tf } = await this.fitted(run.id, seen);
    const t1 = Date.now();
    const part = await loadPartition(store, run.id, partition);
    logger.debug(
      { runId: run.id, partition, modelMs: t1 - t0, loadMs: Date.now() - t1 },
      'linkage partition loaded',
    );
    const cpuBefore = process.cpuUsage();
    const scoring = new PartitionScorer(part).useModel(model, tf).scoring();
    // Slices of about 100 ms, between which BullMQ can renew the job's lock.
    while (!scoring.step(200_000)) await yieldToEventLoop();
    const cpu = process.cpuUsage(cpuBefore);
    const result = scoring.result();
    logger.debug(
      {
        runId: run.id,
        partition,
        records: part.size,
        pairs: result.pairs,
        cpuMs: (cpu.user + cpu.system) / 1000,
      },
      'linkage partition scored',
    );
    const histogram: Record<string, number> = {};
    result.histogram.forEach((pairs, bin) => {
      if (pairs) histogram[bin] = pairs;
    });
    const stats: ScoreStats = {
      pairs: result.pairs,
      links: result.links.size,
      histogram,
      skippedBlocks: result.skippedBlocks,
      pairsByRule: result.pairsByRule,
      records: part.size,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    };
    return this.commit(run, partition, seen, stats, async (client) => {
      await store.putBlobs(client, run.id, [
        { kind: 'links', a: 0, b: partition, data: serialiseLinks(result.links) },
        { kind: 'review', a: 0, b: partition, data: Buffer.from(JSON.stringify(result.review)) },
      ]);
    });
  }

  /**
   * The run's model and term frequencies, read once per run by each worker (they change only when a
   * retention batch sends the run back to its estimate phase, and are learned again: read again
   * after each batch that destroyed records of the run).
   */
  private async fitted(runId: string, seen: number): Promise<{ model: LinkageModel; tf: TermFrequencies }> {
    if (this.cachedFit?.runId !== runId || this.cachedFit.seen !== seen) {
      const model = await this.ctx.store.model(runId);
      const [tfBlob] = await this.ctx.store.getBlobs(runId, 'tf');
      if (!tfBlob) throw new Error(`linkage run ${runId} has no term frequencies`);
      this.cachedFit = { runId, seen, model, tf: termFrequenciesFromJson(tfBlob.data.toString()) };
    }
    return this.cachedFit;
  }
}
