import { LINKAGE_CHUNKS_LOCK } from '@broker/jobs';
import { quoteIdent } from '@broker/core';
import { type FieldType, columnTypeOf } from '../dataset/dataset-schema';
import { recordTable } from '../dataset/record-table';

/** A statement that answers rows: a TypeORM entity manager. */
interface RowQueryable {
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** The dataset a retention batch destroyed records of: its record table and key. */
export interface ChunkedDataset {
  id: string;
  slug: string;
  keyField: string;
  keyType: FieldType;
}

/**
 * Takes {@link LINKAGE_CHUNKS_LOCK} exclusive until the batch's transaction ends: a retention batch
 * does so right after its DELETE of records, before it touches anything linkage derived from them.
 * Linkage transactions that write derived data take it shared, first: one that holds it now commits
 * before the batch goes on (and the batch then finds, and removes, what it wrote); one that takes it
 * after the batch commits reads the records gone (see LINKAGE_CHUNKS_LOCK).
 */
export async function lockLinkageForDestruction(on: RowQueryable): Promise<void> {
  await on.query(`SELECT pg_advisory_xact_lock($1)`, [LINKAGE_CHUNKS_LOCK]);
}

/**
 * A retention batch destroyed the records of `dataset` keyed `keys` (in its transaction, after its
 * DELETE): every linkage chunk bound that names one of them is lowered to the greatest key below it
 * of a record that stays, so that no chunk names a destroyed record. Only a run under way has chunks
 * (finishing a run deletes them), and it needs them: its chunks that are still to be normalised read
 * their records by these bounds. Lowered so, every chunk holds exactly the records that stay of
 * those it held (no record that stays lies between a destroyed key and the key it is lowered to),
 * so the run reads every record once and finishes as it would have. A lower bound with no key below
 * it becomes open (from the first key); an upper bound with none makes its chunk empty (it held no
 * record that stays), and the chunk then names no key at all.
 *
 * Every chunk of the dataset in a run under way also counts the batch (`destructions`): a unit of
 * the run that read its inputs before it commits only if the count it read is still the sum, and
 * is done again otherwise (its inputs may have held the records destroyed here).
 *
 * Under `LINKAGE_CHUNKS_LOCK` (exclusive; see {@link lockLinkageForDestruction}), which a run's
 * prepare unit holds shared while it reads the keys it cuts chunks at and writes them: a run prepared
 * before this batch commits has its chunks here to lower, and one prepared after reads the keys
 * without the destroyed ones. Resolves to the bounds lowered.
 */
export async function lowerLinkageChunkBounds(
  on: RowQueryable,
  dataset: ChunkedDataset,
  keys: readonly string[],
): Promise<number> {
  await lockLinkageForDestruction(on);
  const key = quoteIdent(dataset.keyField);
  // A chunk's dataset is the run's `datasets[dataset_no]`, as its prepare unit recorded them.
  const ofDataset = `r.id = c.run_id AND r.datasets -> c.dataset_no ->> 'id' = $1`;
  await on.query(
    `UPDATE linkage_chunk c SET destructions = destructions + 1 FROM linkage_run r WHERE ${ofDataset}`,
    [dataset.id],
  );
  const lowered = await on.query<{ x: string; v: string | null }>(
    `SELECT d.x, (SELECT max(t.${key})::text FROM ${recordTable(dataset.slug)} t
                   WHERE t.${key} < d.x::${columnTypeOf(dataset.keyType)}) AS v
       FROM (SELECT DISTINCT b.x FROM linkage_chunk c JOIN linkage_run r ON ${ofDataset}
               CROSS JOIN LATERAL (VALUES (c.key_after), (c.key_last)) AS b (x)
              WHERE b.x = ANY ($2::text[])) d`,
    [dataset.id, keys],
  );
  if (!lowered.length) return 0;
  const pairs = [dataset.id, lowered.map((l) => l.x), lowered.map((l) => l.v)];
  await on.query(
    `UPDATE linkage_chunk c SET key_after = m.v
       FROM linkage_run r, unnest($2::text[], $3::text[]) AS m (x, v)
      WHERE ${ofDataset} AND c.key_after = m.x`,
    pairs,
  );
  await on.query(
    `UPDATE linkage_chunk c
        SET key_last = m.v, empty = m.v IS NULL, key_after = CASE WHEN m.v IS NULL THEN NULL ELSE c.key_after END
       FROM linkage_run r, unnest($2::text[], $3::text[]) AS m (x, v)
      WHERE ${ofDataset} AND c.key_last = m.x`,
    pairs,
  );
  return lowered.length;
}
