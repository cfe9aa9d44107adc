import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { RecordsDestroyedHook } from '@broker/jobs';
import { termFrequenciesFromJson, termFrequenciesToJson } from './core/pipeline';
import { RecordBatch } from './core/record-batch';
import { type ReviewPair, deserialiseLinks, serialiseLinks } from './core/scorer';
import {
  RecordIdMap,
  batchWithout,
  linksWithout,
  reviewPairsWithout,
  termFrequenciesWithout,
} from './core/without-records';
import { type Blob, LinkageStore } from './linkage.store';

/**
 * Retention destroyed records (in its batch's transaction, under `LINKAGE_CHUNKS_LOCK` taken
 * exclusive): every run under way that normalised some of them loses them from its normalised data,
 * as if it had never read them. Each chunk that held some keeps its other records, renumbered; its
 * keys and partition batches likewise; the links and pairs for review of the partitions scored lose
 * the pairs naming them and follow the new numbers; the term frequencies count their names once less
 * each; the chunk's normalise unit counts the records it keeps. What the run computed from them
 * before (its model: probabilities per comparison level) names no record and stays. Units that read
 * their inputs before this batch commit nothing (see LinkageStore.commitUnit): they are done again
 * from what is left here.
 */
@Injectable()
export class LinkageRecordsDestroyed implements RecordsDestroyedHook {
  constructor(private readonly store: LinkageStore) {}

  async recordsDestroyed(client: PoolClient, datasetId: string, keys: readonly string[]): Promise<void> {
    if (!keys.length) return;
    for (const run of await this.store.runsReading(client, datasetId)) {
      await this.removeFrom(client, run.id, run.dataset_no, new Set(keys));
    }
  }

  /** Removes the records keyed `keys` of dataset number `datasetNo` from a run's normalised data. */
  private async removeFrom(
    client: PoolClient,
    runId: string,
    datasetNo: number,
    keys: ReadonlySet<string>,
  ): Promise<void> {
    const holding = await this.store.chunksHolding(client, runId, datasetNo, [...keys]);
    if (!holding.length) return;
    const ids = new RecordIdMap();
    const written: Blob[] = [];
    for (const { chunk, keys: chunkKeys } of holding) {
      const gone = new Set<number>();
      chunkKeys.forEach((key, i) => {
        if (keys.has(key)) gone.add(i);
      });
      ids.drop(chunk, chunkKeys.length, gone);
      const kept = chunkKeys.filter((_, i) => !gone.has(i));
      written.push({ kind: 'keys', a: chunk, b: 0, data: Buffer.from(JSON.stringify(kept)) });
      await this.store.setChunkRecords(client, runId, chunk, kept.length);
    }
    const chunks = holding.map((h) => h.chunk);
    // The records that go, as they were normalised: their names are counted once less.
    const gone: RecordBatch[] = [];
    for (const blob of await this.store.blobsOn(client, runId, ['records', 'part'], chunks)) {
      const batch = batchWithout(
        RecordBatch.deserialise(blob.data),
        ids,
        blob.kind === 'records' ? gone : undefined,
      );
      written.push({ ...blob, data: batch.serialise() });
    }
    for (const blob of await this.store.blobsOn(client, runId, ['links', 'review', 'tf'])) {
      let data: Buffer;
      if (blob.kind === 'links') {
        data = serialiseLinks(linksWithout(deserialiseLinks(blob.data), ids));
      } else if (blob.kind === 'review') {
        const pairs = JSON.parse(blob.data.toString()) as ReviewPair[];
        data = Buffer.from(JSON.stringify(reviewPairsWithout(pairs, ids)));
      } else {
        const tf = termFrequenciesFromJson(blob.data.toString());
        data = Buffer.from(termFrequenciesToJson(termFrequenciesWithout(tf, gone)));
      }
      written.push({ ...blob, data });
    }
    await this.store.putBlobs(client, runId, written);
  }
}
