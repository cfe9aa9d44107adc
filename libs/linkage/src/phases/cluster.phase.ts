import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { assignPersonIds } from '../core/clustering';
import { decodePattern } from '../core/comparisons';
import { DEFAULT_SETTINGS, MAX_CHUNK_RECORDS, clusterLinks, recordIdOf } from '../core/pipeline';
import { RecordBatch } from '../core/record-batch';
import { type Links, type ReviewPair, deserialiseLinks, nearestFirst } from '../core/scorer';
import type { ClusterStats } from '../linkage-run.stats';
import type { ChunkRow, DecisionRow, LinkageRunRow, ReviewPairRow, RunDataset } from '../linkage.store';
import { UnitPhase } from './unit-phase';

/** Pairs kept for review per run, the nearest the threshold. */
export const REVIEW_PAIRS = 100;
/** The weight of a link a reviewer decided: above any the model gives. */
const DECIDED_WEIGHT = 1000;

/**
 * Phase 5, one unit: links → clusters (without chaining) → person ids, kept from the previous run
 * where a cluster holds most of a previous person's records; writes the run's person per record
 * (not yet in force: finishing the run puts it in force), the next person id and the review pairs.
 */
export class ClusterPhase extends UnitPhase {
  readonly phase = 'cluster' as const;

  async execute(run: LinkageRunRow, _unit: number, seen: number): Promise<boolean> {
    const { store } = this.ctx;
    const cpuBefore = process.cpuUsage();
    const chunkRows = await store.chunks(run.id);
    const records = (await store.getBlobs(run.id, 'records')).map((b) => RecordBatch.deserialise(b.data));
    const keys = (await store.getBlobs(run.id, 'keys')).map((b) => JSON.parse(b.data.toString()) as string[]);
    if (records.length !== chunkRows.length || keys.length !== chunkRows.length) {
      throw new Error(`linkage run ${run.id} is missing normalised chunks`);
    }
    const links: Links[] = (await store.getBlobs(run.id, 'links')).map((b) => deserialiseLinks(b.data));
    const datasets = run.datasets!;
    // Reviewers' decisions, as record ids of this run: "same" joins the two, "not same" keeps
    // them apart, whatever the weights say.
    const decided = decisionLinks(await store.decisions(), chunkRows, keys, datasets);
    await yieldToEventLoop();
    const clusters = clusterLinks(records, [...links, decided.together], decided.apart);
    await yieldToEventLoop();
    const review = await this.reviewPairs(run, chunkRows, keys);

    const previous = new Float64Array(clusters.label.length).fill(-1);
    if (run.previous_run_id) {
      const byKey = new Map<string, number>();
      for (const row of await store.personsOf(run.previous_run_id))
        byKey.set(`${row.dataset_id}\u0000${row.record_key}`, Number(row.person_id));
      chunkRows.forEach((chunk, c) => {
        const datasetId = datasets[chunk.dataset_no].id;
        const offset = clusters.offsets[c];
        keys[c].forEach((key, i) => {
          previous[offset + i] = byKey.get(`${datasetId}\u0000${key}`) ?? -1;
        });
      });
    }

    // Filled in by the commit, which stores it after writing.
    const stats: Partial<ClusterStats> = {};
    return this.commit(run, 0, seen, stats, async (client) => {
      // New ids continue from the state read in this transaction, so an attempt that dies before
      // committing leaves the next attempt the same ids.
      const assigned = assignPersonIds(clusters.label, previous, await store.lockNextPersonId(client));
      await store.replacePersons(client, run.id, personRows());
      await store.setNextPersonId(client, assigned.nextId);
      await store.replaceReviewPairs(client, run.id, review);
      // Nothing named here may be of a record retention destroyed (the commit holds the lock that
      // orders it with retention, and retention removed those from what the unit read): a guard.
      const withoutRecord = await store.deleteWithoutRecord(client, run.id, datasets);
      if (withoutRecord) {
        this.ctx.logger.warn(
          { runId: run.id, rows: withoutRecord },
          'linkage rows of destroyed records dropped',
        );
      }
      const cpu = process.cpuUsage(cpuBefore);
      Object.assign(stats, {
        persons: clusters.count,
        merges: clusters.merges,
        refused: clusters.refused,
        kept: assigned.kept,
        created: assigned.created,
        cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      });

      function* personRows(): Generator<[string, string, number]> {
        for (let c = 0; c < chunkRows.length; c++) {
          const datasetId = datasets[chunkRows[c].dataset_no].id;
          const offset = clusters.offsets[c];
          const chunkKeys = keys[c];
          for (let i = 0; i < chunkKeys.length; i++) {
            yield [datasetId, chunkKeys[i], assigned.personOf.get(clusters.label[offset + i])!];
          }
        }
      }
    });
  }

  /**
   * The run's pairs nearest its threshold, for review: the nearest of every partition's, named by
   * their records (dataset and key, which only stewards of the records' agencies may read) and
   * their comparison levels.
   */
  private async reviewPairs(
    run: LinkageRunRow,
    chunkRows: readonly ChunkRow[],
    keys: readonly string[][],
  ): Promise<ReviewPairRow[]> {
    const gathered = (await this.ctx.store.getBlobs(run.id, 'review')).flatMap(
      (b) => JSON.parse(b.data.toString()) as ReviewPair[],
    );
    const threshold = run.threshold ?? DEFAULT_SETTINGS.threshold;
    const byChunk = new Map(chunkRows.map((c) => [c.chunk, c]));
    const side = (recordId: number) => {
      const chunk = byChunk.get(Math.floor(recordId / MAX_CHUNK_RECORDS))!;
      return {
        dataset: run.datasets![chunk.dataset_no].id,
        key: keys[chunk.chunk][recordId % MAX_CHUNK_RECORDS],
      };
    };
    return nearestFirst(gathered, threshold)
      .slice(0, REVIEW_PAIRS)
      .map((p, k) => {
        const a = side(p.a);
        const b = side(p.b);
        return {
          pair: k + 1,
          dataset_a: a.dataset,
          key_a: a.key,
          dataset_b: b.dataset,
          key_b: b.key,
          levels: decodePattern(p.pattern),
          weight: p.weight,
        };
      });
  }
}

/**
 * The reviewers' decisions on pairs of this run's records, as record ids: pairs decided "same"
 * as links that outweigh anything, pairs decided "not same" as pairs to keep apart. Decisions on
 * records no longer in the run are left aside.
 */
export function decisionLinks(
  rows: readonly DecisionRow[],
  chunkRows: readonly ChunkRow[],
  keys: readonly string[][],
  datasets: readonly RunDataset[],
): { together: Links; apart: [number, number][] } {
  const together: Links = {
    size: 0,
    a: new Uint32Array(0),
    b: new Uint32Array(0),
    weight: new Float32Array(0),
  };
  if (!rows.length) return { together, apart: [] };
  const wanted = new Set(
    rows.flatMap((r) => [`${r.dataset_a}\u0000${r.key_a}`, `${r.dataset_b}\u0000${r.key_b}`]),
  );
  const recordOf = new Map<string, number>();
  chunkRows.forEach((chunk, c) => {
    const datasetId = datasets[chunk.dataset_no].id;
    keys[c].forEach((key, i) => {
      const k = `${datasetId}\u0000${key}`;
      if (wanted.has(k)) recordOf.set(k, recordIdOf(chunk.chunk, i));
    });
  });
  const same: [number, number][] = [];
  const apart: [number, number][] = [];
  for (const r of rows) {
    const x = recordOf.get(`${r.dataset_a}\u0000${r.key_a}`);
    const y = recordOf.get(`${r.dataset_b}\u0000${r.key_b}`);
    if (x === undefined || y === undefined) continue;
    (r.same ? same : apart).push([x, y]);
  }
  return {
    together: {
      size: same.length,
      a: Uint32Array.from(same.map(([x]) => x)),
      b: Uint32Array.from(same.map(([, y]) => y)),
      weight: new Float32Array(same.length).fill(DECIDED_WEIGHT),
    },
    apart,
  };
}
