import { MAX_CHUNKS, partitionsFor } from '../core/pipeline';
import { thresholdWeight } from '../linkage-config';
import { unitsTotal } from '../linkage-run.machine';
import type { ChunkRow, LinkageRunRow, RunSettings } from '../linkage.store';
import { UnitPhase } from './unit-phase';

/**
 * Phase 1, one unit: the datasets with identity fields, each cut into chunks of
 * `LINKAGE_CHUNK_RECORDS` consecutive record keys; the number of partitions; the run's settings.
 * The keys are read in the unit's commit, under the lock that orders it with retention (taken by
 * the commit, first: see LinkageStore.commitUnit).
 */
export class PreparePhase extends UnitPhase {
  readonly phase = 'prepare' as const;

  async execute(run: LinkageRunRow, _unit: number, seen: number): Promise<boolean> {
    const { store, config } = this.ctx;
    const datasets = await store.linkableDatasets();
    if (datasets.length > 65_535) throw new Error('linkage takes at most 65,535 datasets');
    const size = config.LINKAGE_CHUNK_RECORDS;
    // Filled in by the commit, which stores it after writing.
    const stats: Record<string, number> = {};
    return this.commit(run, 0, seen, stats, async (client) => {
      // The chunks are cut, and written, under the lock retention's batches take to lower the bounds
      // that name the records they destroy (the commit holds it): a bound is a record key no batch
      // has destroyed, or one the next batch to commit lowers (see LINKAGE_CHUNKS_LOCK).
      const chunks: Omit<ChunkRow, 'chunk' | 'empty'>[] = [];
      let records = 0;
      for (const [no, dataset] of datasets.entries()) {
        const n = await store.countRecords(dataset, client);
        // Every size-th key in key order ends a chunk; the last chunk is open-ended.
        let after: string | null = null;
        for (const last of await store.chunkEnds(dataset, size, client)) {
          chunks.push({ dataset_no: no, key_after: after, key_last: last });
          after = last;
        }
        if (n % size !== 0) chunks.push({ dataset_no: no, key_after: after, key_last: null });
        records += n;
      }
      if (chunks.length > MAX_CHUNKS) {
        throw new Error(`linkage takes at most ${MAX_CHUNKS} chunks: raise LINKAGE_CHUNK_RECORDS`);
      }
      const partitions = config.LINKAGE_PARTITIONS ?? partitionsFor(records);
      const settings: RunSettings = {
        chunkRecords: size,
        partitions,
        randomPairs: config.LINKAGE_RANDOM_PAIRS,
        threshold: thresholdWeight(config),
      };
      Object.assign(stats, { datasets: datasets.length, records, chunks: chunks.length, partitions });
      await store.replaceChunks(client, run.id, chunks);
      await store.recordPlan(client, run.id, {
        datasets,
        chunks: chunks.length,
        partitions,
        settings,
        unitsTotal: unitsTotal({ chunks: chunks.length, partitions }),
      });
    });
  }
}
