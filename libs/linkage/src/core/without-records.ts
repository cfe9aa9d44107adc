import { MAX_CHUNK_RECORDS, recordIdOf } from './pipeline';
import { RecordBatch } from './record-batch';

/**
 * A run's normalised data without some of its records (those retention destroyed while it worked),
 * as if they had never been read: each chunk that held some keeps the others in order, renumbered
 * from 0, as normalising the records that stay would number them, and every record id in its
 * chunks and partitions follows (nothing else holds one: a run whose links or model were computed
 * from them goes back to its estimate phase). The new id of a record id, or -1 when its record is
 * gone.
 */
export class RecordIdMap {
  /** Per chunk that lost records: the new index of each old index, or -1. */
  private readonly chunks = new Map<number, Int32Array>();

  /** Chunk `chunk`, of `size` records, loses those at `gone` (indices). */
  drop(chunk: number, size: number, gone: ReadonlySet<number>): void {
    const index = new Int32Array(size);
    let next = 0;
    for (let i = 0; i < size; i++) index[i] = gone.has(i) ? -1 : next++;
    this.chunks.set(chunk, index);
  }

  /** The new id of `recordId`, or -1 when its record is gone. */
  map(recordId: number): number {
    const chunk = Math.floor(recordId / MAX_CHUNK_RECORDS);
    const index = this.chunks.get(chunk);
    if (!index) return recordId;
    const i = recordId % MAX_CHUNK_RECORDS;
    return i < index.length && index[i] >= 0 ? recordIdOf(chunk, index[i]) : -1;
  }
}

/**
 * The batch without the records that are gone, the others renumbered: its names dictionary holds
 * only the names of the records it keeps.
 */
export function batchWithout(batch: RecordBatch, ids: RecordIdMap): RecordBatch {
  const kept = RecordBatch.builder(batch.size);
  const newIds: number[] = [];
  for (let i = 0; i < batch.size; i++) {
    const id = ids.map(batch.recordId[i]);
    if (id < 0) continue;
    kept.pushFrom(batch, i, batch.mask[i]);
    newIds.push(id);
  }
  const out = kept.build();
  out.recordId.set(newIds);
  return out;
}
