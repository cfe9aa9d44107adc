import {
  type DatasetShape,
  PolicyError,
  type RowFilter,
  personKeyPrefixSql,
  quoteIdent,
  populationPredicate,
} from '@broker/policy';
import type { WritableDataset } from './dataset.service';
import { recordTable } from './record-table';

/**
 * Most records one ingestion may change and still keep its dataset's personKey lookup tables up to
 * date in its own transaction (an HMAC per linked record that enters a table's population). A larger
 * batch drops them instead, and they are built again in the background after the next filter on
 * personKey, as after the first.
 */
export const PERSON_KEY_MAINTAIN_MAX_ROWS = 100_000;

/** A pg client in a transaction. */
interface Client {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }>;
}

/** What {@link keepPersonKeys} does with a dataset's personKey lookup tables for one change of its records. */
export interface PersonKeyUpkeep {
  /**
   * Once the change is applied: of each record `staging` names by key (null: every record, the first
   * records of an empty table), the entry goes from each table whose population it is no longer in,
   * and a linked record (in the table's run) that is in it now is filed where it is not yet.
   */
  afterChange(staging: string | null): Promise<void>;
}

const NO_UPKEEP: PersonKeyUpkeep = { afterChange: () => Promise.resolve() };

/**
 * Keeps the personKey lookup tables of `dataset` (libs/linkage/src/person-key-index.ts, migration
 * person-key-population) true across a change of `rows` of its records, made by the caller's
 * transaction under its lock on the record table (ingestion's SHARE ROW EXCLUSIVE, which a build's
 * SHARE lock conflicts with: no build is under way, nor starts, until it commits). A table files the
 * linked records of its grant's population only (its row filter; consent is not part of it), and a
 * filter on personKey looks only at the records its table files: a record that enters the population
 * must be filed for the filter to find it, one that leaves it is taken out so that no filter reads it.
 * The tables are read `FOR KEY SHARE`, so that no sweep drops one halfway. A change larger than `max`
 * drops them (see {@link PERSON_KEY_MAINTAIN_MAX_ROWS}), and so is dropped a table whose row filter no
 * longer fits the dataset: a table is complete or it is not there, and without it a filter hashes
 * every linked record of the dataset (slower, never short). Records are named by key, as the tables
 * name them: a record that takes a new row id needs nothing.
 */
export async function keepPersonKeys(
  client: Client,
  dataset: WritableDataset,
  rows: number,
  max = PERSON_KEY_MAINTAIN_MAX_ROWS,
): Promise<PersonKeyUpkeep> {
  const { rows: tables } = await client.query<{
    id: number;
    run_id: string;
    scope: string;
    row_filter: RowFilter | null;
  }>(
    `SELECT id, run_id, scope, row_filter FROM person_key_scope WHERE dataset_id = $1 ORDER BY id FOR KEY SHARE`,
    [dataset.id],
  );
  if (!tables.length) return NO_UPKEEP;
  if (rows > max) {
    await client.query(`DELETE FROM person_key_scope WHERE dataset_id = $1`, [dataset.id]);
    return NO_UPKEEP;
  }
  const shape: DatasetShape = { ...dataset, typeName: '', subjectField: null };
  const kept: { id: number; run: string; scope: string; admitted: string | null }[] = [];
  const gone: number[] = [];
  for (const table of tables) {
    try {
      const admitted = populationPredicate(table.row_filter, shape, 't');
      kept.push({ id: table.id, run: table.run_id, scope: table.scope, admitted });
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      gone.push(table.id);
    }
  }
  if (gone.length) await client.query(`DELETE FROM person_key_scope WHERE id = ANY ($1)`, [gone]);
  if (!kept.length) return NO_UPKEEP;
  const records = recordTable(dataset.slug);
  const key = quoteIdent(dataset.keyField);
  const named = (staging: string | null) =>
    staging === null ? `${records} t` : `${records} t JOIN ${staging} s ON t.${key} = s.${key}`;
  return {
    async afterChange(staging) {
      for (const table of kept) {
        // Out of the population now (a field its row filter reads changed): the entry goes.
        if (table.admitted) {
          await client.query(
            `DELETE FROM person_key pk USING ${named(staging)}
              WHERE pk.scope_id = $1 AND pk.record_key = t.${key}::text AND (${table.admitted}) IS NOT TRUE`,
            [table.id],
          );
        }
        // In it, linked in the table's run, and not filed yet: filed, its person hashed (OFFSET 0
        // keeps the hash above the anti-join: only the records filed are hashed).
        await client.query(
          `INSERT INTO person_key (scope_id, record_key, person_id, prefix)
           SELECT $1, n.record_key, n.person_id, ${personKeyPrefixSql('n.person_id', '$3::text')} FROM (
             SELECT lp.record_key, lp.person_id FROM ${named(staging)}
               JOIN linkage_person lp ON lp.run_id = $2 AND lp.dataset_id = $4 AND lp.record_key = t.${key}::text
              WHERE ${table.admitted ?? 'TRUE'}
                AND NOT EXISTS (SELECT 1 FROM person_key pk WHERE pk.scope_id = $1 AND pk.record_key = lp.record_key)
             OFFSET 0) n
           ON CONFLICT DO NOTHING`,
          [table.id, table.run, table.scope, dataset.id],
        );
      }
    },
  };
}
