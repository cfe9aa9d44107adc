import { IDENTITY_PROPERTY, type IdentityRoleName, emptyIdentityValues } from '../core/identity-fields';
import type { IdentityValues } from '../core/normalise';
import { normaliseChunk } from '../core/pipeline';
import type { Blob, LinkageRunRow, RunDataset } from '../linkage.store';
import { UnitPhase } from './unit-phase';

/**
 * Phase 2, one unit per chunk: the chunk's records read and normalised, and routed to the
 * partitions of each blocking scheme; writes the chunk's normalised records, its record keys and
 * one batch per partition.
 */
export class NormalisePhase extends UnitPhase {
  readonly phase = 'normalise' as const;

  async execute(run: LinkageRunRow, chunkNo: number, seen: number): Promise<boolean> {
    const { store, logger } = this.ctx;
    const chunk = await store.chunk(run.id, chunkNo);
    if (!chunk) throw new Error(`linkage run ${run.id} has no chunk ${chunkNo}`);
    const dataset = run.datasets![chunk.dataset_no];
    const t0 = Date.now();
    // An empty chunk: retention destroyed every record up to its end before it was normalised.
    const { keys, rows } = identityRows(
      dataset,
      chunk.empty ? [] : await store.chunkRecords(dataset, chunk.key_after, chunk.key_last),
    );
    const t1 = Date.now();
    const normalised = normaliseChunk(chunkNo, chunk.dataset_no, rows, run.partitions!);
    const blobs: Blob[] = [
      { kind: 'records', a: chunkNo, b: 0, data: normalised.records.serialise() },
      { kind: 'keys', a: chunkNo, b: 0, data: Buffer.from(JSON.stringify(keys)) },
      ...[...normalised.parts].map(([p, batch]): Blob => ({
        kind: 'part',
        a: chunkNo,
        b: p,
        data: batch.serialise(),
      })),
    ];
    logger.debug(
      { runId: run.id, chunk: chunkNo, readMs: t1 - t0, computeMs: Date.now() - t1 },
      'linkage chunk normalised',
    );
    const stats = { records: rows.length, unparsed: normalised.unparsed };
    return this.commit(run, chunkNo, seen, stats, (client) =>
      store.replaceChunkBlobs(client, run.id, chunkNo, blobs),
    );
  }
}

/** A chunk's rows as read (key, then the identity fields in the dataset's order) → keys and values. */
export function identityRows(
  dataset: RunDataset,
  result: readonly (readonly (string | null)[])[],
): { keys: string[]; rows: IdentityValues[] } {
  const keys: string[] = new Array<string>(result.length);
  const rows: IdentityValues[] = new Array<IdentityValues>(result.length);
  const properties = dataset.fields.map((f) => IDENTITY_PROPERTY[f.identity as IdentityRoleName]);
  for (let r = 0; r < result.length; r++) {
    const values = result[r];
    keys[r] = values[0]!;
    const identity: IdentityValues = emptyIdentityValues();
    for (let i = 0; i < properties.length; i++) identity[properties[i]] = values[i + 1];
    rows[r] = identity;
  }
  return { keys, rows };
}
