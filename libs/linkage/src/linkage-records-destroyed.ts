import { Inject, Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import { LOGGER } from '@broker/core';
import type { RecordsDestroyedHook } from '@broker/jobs';
import { RecordBatch } from './core/record-batch';
import { RecordIdMap, batchWithout } from './core/without-records';
import { RELEARNED_PHASES, RELEARN_PHASE, afterDestruction } from './linkage-run.machine';
import { LinkageService } from './linkage.service';
import { type Blob, LinkageStore } from './linkage.store';

/**
 * Retention destroyed records (in its batch's transaction, under `LINKAGE_CHUNKS_LOCK` taken
 * exclusive): every run under way that normalised some of them loses them from its normalised data,
 * as if it had never read them. Each chunk that held some keeps its other records, renumbered; its
 * keys and partition batches likewise; the chunk's normalise unit counts the records it keeps.
 *
 * A run whose estimate unit is done learned its model from them (u and m per comparison level, the
 * prior, the term frequencies), and weighed and grouped records by it: it goes back to its estimate
 * phase (the state machine's {@link afterDestruction}), in the same transaction: the model goes, and
 * so does whatever its estimate, score and cluster units wrote; those units are pending again and
 * are done from what is left, so the run ends as an undisturbed run over the records that stay would.
 * Units that read their inputs before this batch commit nothing (see LinkageStore.commitUnit): they
 * are done again from what is left here, or, of a phase the run went back before, when the run
 * enters it again.
 *
 * The run in force keeps no join through them either: when it had assigned destroyed records to
 * persons (retention deleted those rows, and counts them), two records that stay may be one person
 * only through a destroyed one. A run is requested in the same transaction (trigger `RETENTION`; the
 * run already waiting is joined; one that works is waited for), so the destruction and the request
 * commit together, and a run that reads only the records that stay replaces those persons when it
 * succeeds. After the commit, {@link runRequested} asks a worker to start it; if Redis cannot take
 * the job, the run is in PostgreSQL and the workers' watchdog starts it.
 */
@Injectable()
export class LinkageRecordsDestroyed implements RecordsDestroyedHook {
  constructor(
    private readonly store: LinkageStore,
    private readonly linkage: LinkageService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async recordsDestroyed(
    client: PoolClient,
    datasetId: string,
    keys: readonly string[],
    assignedInForce: number,
  ): Promise<string | null> {
    if (!keys.length) return null;
    for (const run of await this.store.runsReading(client, datasetId)) {
      if (!(await this.removeFrom(client, run.id, run.dataset_no, new Set(keys)))) continue;
      const estimateDone = await this.store.estimateDone(client, run.id);
      if (afterDestruction({ status: 'RUNNING', estimateDone }) !== 'relearn') continue;
      const back = await this.store.backTo(client, run.id, RELEARN_PHASE, RELEARNED_PHASES);
      if (back) {
        this.logger.info(
          { runId: run.id, from: back.from, restarts: back.restarts },
          'linkage run back to its estimate phase: retention destroyed records its model learned from',
        );
      }
    }
    if (!assignedInForce) return null;
    const run = await this.store.createRun('RETENTION', null, client);
    this.logger.info(
      { runId: run.id, trigger: run.trigger, datasetId, assignedInForce },
      'linkage run requested by retention: it destroyed records the run in force had assigned to persons',
    );
    return run.id;
  }

  runRequested(runId: string): Promise<void> {
    return this.linkage.kick(runId);
  }

  /**
   * Removes the records keyed `keys` of dataset number `datasetNo` from a run's normalised data;
   * resolves to whether it held any.
   */
  private async removeFrom(
    client: PoolClient,
    runId: string,
    datasetNo: number,
    keys: ReadonlySet<string>,
  ): Promise<boolean> {
    const holding = await this.store.chunksHolding(client, runId, datasetNo, [...keys]);
    if (!holding.length) return false;
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
    for (const blob of await this.store.blobsOn(client, runId, ['records', 'part'], chunks)) {
      written.push({ ...blob, data: batchWithout(RecordBatch.deserialise(blob.data), ids).serialise() });
    }
    await this.store.putBlobs(client, runId, written);
    return true;
  }
}
