import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DEFAULT_SETTINGS, fitModel, termFrequenciesToJson } from '../core/pipeline';
import { RecordBatch } from '../core/record-batch';
import type { LinkageRunRow } from '../linkage.store';
import { UnitPhase, loadPartition } from './unit-phase';

/**
 * Phase 3, one unit: term frequencies over every record, u from random pairs, m by EM on the first
 * partitions (a random sample of the pair space), and the prior; writes the model with the run.
 */
export class EstimatePhase extends UnitPhase {
  readonly phase = 'estimate' as const;

  async execute(run: LinkageRunRow, _unit: number, seen: number): Promise<boolean> {
    const { store } = this.ctx;
    const settings = run.settings!;
    const chunks = (await store.getBlobs(run.id, 'records')).map((b) => RecordBatch.deserialise(b.data));
    const emParts: RecordBatch[] = [];
    let held = 0;
    for (let p = 0; p < run.partitions! && held < DEFAULT_SETTINGS.emRecords; p++) {
      const part = await loadPartition(store, run.id, p);
      emParts.push(part);
      held += part.size;
    }
    await yieldToEventLoop();
    const { model, tf } = fitModel(chunks, emParts, run.partitions!, {
      ...DEFAULT_SETTINGS,
      threshold: settings.threshold,
      randomPairs: settings.randomPairs,
    });
    const stats = { emPairs: model.emPairs, emIterations: model.emIterations, lambda: model.lambda };
    return this.commit(run, 0, seen, stats, async (client) => {
      await store.saveModel(client, run.id, model);
      await store.putBlobs(client, run.id, [
        { kind: 'tf', a: 0, b: 0, data: Buffer.from(termFrequenciesToJson(tf)) },
      ]);
    });
  }
}
