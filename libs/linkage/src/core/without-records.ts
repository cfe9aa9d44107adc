import type { TermFrequencies } from './model';
import { MAX_CHUNK_RECORDS, recordIdOf, termFrequencies } from './pipeline';
import { RecordBatch } from './record-batch';
import type { Links, ReviewPair } from './scorer';

/**
 * A run's normalised data without some of its records (those retention destroyed while it worked),
 * as if they had never been read: each chunk that held some keeps the others in order, renumbered
 * from 0, and every record id anywhere (partitions, links, pairs for review) follows. The new id of
 * a record id, or -1 when its record is gone.
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
 * only the names of the records it keeps. `gone`, when given, receives the records left out.
 */
export function batchWithout(batch: RecordBatch, ids: RecordIdMap, gone?: RecordBatch[]): RecordBatch {
  const kept = RecordBatch.builder(batch.size);
  const dropped = RecordBatch.builder(0);
  const newIds: number[] = [];
  for (let i = 0; i < batch.size; i++) {
    const id = ids.map(batch.recordId[i]);
    if (id < 0) {
      dropped.pushFrom(batch, i, batch.mask[i]);
      continue;
    }
    kept.pushFrom(batch, i, batch.mask[i]);
    newIds.push(id);
  }
  const out = kept.build();
  out.recordId.set(newIds);
  if (gone && dropped.size) gone.push(dropped.build());
  return out;
}

/** Links without those naming a record that is gone, the others renumbered. */
export function linksWithout(links: Links, ids: RecordIdMap): Links {
  const a: number[] = [];
  const b: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < links.size; i++) {
    const x = ids.map(links.a[i]);
    const y = ids.map(links.b[i]);
    if (x < 0 || y < 0) continue;
    a.push(x);
    b.push(y);
    weight.push(links.weight[i]);
  }
  return {
    size: a.length,
    a: Uint32Array.from(a),
    b: Uint32Array.from(b),
    weight: Float32Array.from(weight),
  };
}

/** Pairs for review without those naming a record that is gone, the others renumbered. */
export function reviewPairsWithout(pairs: readonly ReviewPair[], ids: RecordIdMap): ReviewPair[] {
  return pairs.flatMap((p) => {
    const a = ids.map(p.a);
    const b = ids.map(p.b);
    return a < 0 || b < 0 ? [] : [{ ...p, a, b }];
  });
}

/** Term frequencies without the records of `gone` (their names counted once less each). */
export function termFrequenciesWithout(tf: TermFrequencies, gone: readonly RecordBatch[]): TermFrequencies {
  const less = termFrequencies(gone);
  const minus = (counts: Map<string, number>, by: Map<string, number>) => {
    const out = new Map(counts);
    for (const [name, n] of by) {
      const left = (out.get(name) ?? 0) - n;
      if (left > 0) out.set(name, left);
      else out.delete(name);
    }
    return out;
  };
  return {
    records: Math.max(0, tf.records - less.records),
    first: minus(tf.first, less.first),
    last: minus(tf.last, less.last),
    city: minus(tf.city, less.city),
  };
}
