import { setTimeout as sleep } from 'node:timers/promises';
import type { PoolClient } from 'pg';
import type { Logger } from 'pino';
import type { LinkagePhase } from '@broker/jobs';
import { RecordBatch } from '../core/record-batch';
import type { LinkageConfig } from '../linkage-config';
import type { LinkageRunRow, LinkageStore } from '../linkage.store';

/** What every phase works with. */
export interface PhaseContext {
  store: LinkageStore;
  config: LinkageConfig;
  logger: Logger;
}

/**
 * A phase of a linkage run: the work of its units. A unit reads its inputs from PostgreSQL,
 * computes, and commits its results together with its done mark in one transaction
 * ({@link UnitPhase.commit}), so a unit killed half-way committed nothing and a unit done twice
 * commits once. Which unit runs when is the state machine's business, not the phase's.
 */
export abstract class UnitPhase {
  abstract readonly phase: LinkagePhase;

  constructor(protected readonly ctx: PhaseContext) {}

  /**
   * Does one unit of the run; returns whether this attempt committed it (false: it was done already).
   * `seen` is the run's count of retention batches that destroyed its records, read before the unit
   * reads its inputs (see LinkageStore.commitUnit).
   */
  abstract execute(run: LinkageRunRow, unit: number, seen: number): Promise<boolean>;

  /**
   * Commits a unit's results and its done mark, unless the unit is done or the run is over; throws
   * `StaleUnitError` when retention destroyed records of the run since `seen` was read.
   * `stats` is stored after `write`, which may fill it in. Pauses first when
   * `LINKAGE_UNIT_PAUSE_MS` is set (tests that kill a worker inside a unit).
   */
  protected async commit(
    run: LinkageRunRow,
    unit: number,
    seen: number,
    stats: object,
    write: (client: PoolClient) => Promise<void>,
  ): Promise<boolean> {
    if (this.ctx.config.LINKAGE_UNIT_PAUSE_MS > 0) await sleep(this.ctx.config.LINKAGE_UNIT_PAUSE_MS);
    return this.ctx.store.commitUnit(run.id, this.phase, unit, seen, stats as Record<string, unknown>, write);
  }
}

/** All chunks' records of one partition (the normalise phase wrote them, one batch per chunk). */
export async function loadPartition(
  store: LinkageStore,
  runId: string,
  partition: number,
): Promise<RecordBatch> {
  const blobs = await store.getBlobs(runId, 'part', { b: partition });
  return RecordBatch.concat(
    blobs.length ? blobs.map((b) => RecordBatch.deserialise(b.data)) : [RecordBatch.builder(0).build()],
  );
}
