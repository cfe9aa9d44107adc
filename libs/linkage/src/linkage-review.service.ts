import { Injectable } from '@nestjs/common';
import { AuditAction, AuditService } from '@broker/audit';
import { type RequestContext, Role } from '@broker/auth';
import { isUuid, notFound, quoteIdent } from '@broker/core';
import { RECORDS_SCHEMA, columnTypeOf, type FieldType } from '@broker/registry';
import { COMPARISONS, LEVELS } from './core/comparisons';
import { levelWeights, matchProbability } from './core/model';
import type { LinkagePairRecordModel, LinkageReviewPairModel } from './linkage-review.model';
import { LinkageStore, identityText } from './linkage.store';

interface ReviewRow {
  pair: number;
  dataset_a: string;
  key_a: string;
  dataset_b: string;
  key_b: string;
  levels: number[];
  weight: number;
  provider_a: string;
  provider_b: string;
  decision: boolean | null;
}

/**
 * Review of a run's uncertain pairs (those nearest its threshold). The operator and auditors read
 * them as comparison patterns only (each comparison's level and weight, never a value or a key); a
 * steward reads only the pairs both of whose records its own agency holds (duplicates within the
 * agency), and their records. A pair with another agency's record is, to a steward, no pair at all:
 * its levels would say what the other record holds ('exact' is the steward's own value) and its
 * existence that the steward's person is probably in another agency's data, which no agreement
 * released. A decision (one person or not) names the two records, is kept across runs and applied
 * by every later run, and is audited without naming them.
 */
@Injectable()
export class LinkageReviewService {
  constructor(
    private readonly store: LinkageStore,
    private readonly audit: AuditService,
  ) {}

  /** The run's uncertain pairs, nearest the threshold first; a steward's only where it holds both sides. */
  async pairs(ctx: RequestContext, runId: string): Promise<LinkageReviewPairModel[]> {
    const run = isUuid(runId) ? await this.store.getRun(runId.toLowerCase()) : null;
    if (!run) throw notFound('Linkage run');
    const steward = ctx.principal.role === Role.STEWARD;
    const rows = await this.rows(run.id, null, steward ? ctx.principal.agencyId : null);
    const weights = run.model ? levelWeights(run.model) : null;
    return rows.map((row) => ({
      pair: row.pair,
      weight: row.weight,
      probability: matchProbability(row.weight),
      decision: row.decision,
      levels: COMPARISONS.map((comparison, c) => {
        const level = row.levels[c];
        const missing = level >= LEVELS[c];
        return {
          comparison: comparison.name,
          level: missing ? 'missing' : comparison.levels[level],
          weight: missing || !weights ? 0 : weights[c][level],
        };
      }),
    }));
  }

  /**
   * A steward's pair: its two records, both its agency's; NOT_FOUND for a pair with another agency's
   * record exactly as for a pair that does not exist. Audited (the run and pair number, not the
   * records).
   */
  async side(ctx: RequestContext, runId: string, pair: number): Promise<LinkagePairRecordModel[]> {
    const run = isUuid(runId) ? await this.store.getRun(runId.toLowerCase()) : null;
    const [row] = run ? await this.rows(run.id, pair, ctx.principal.agencyId) : [];
    if (!run || !row) throw notFound('Linkage review pair');
    const sides = [
      { dataset: row.dataset_a, key: row.key_a, provider: row.provider_a },
      { dataset: row.dataset_b, key: row.key_b, provider: row.provider_b },
    ].filter((s) => s.provider === ctx.principal.agencyId);
    const out: LinkagePairRecordModel[] = [];
    for (const side of sides) {
      const dataset = run.datasets?.find((d) => d.id === side.dataset);
      if (!dataset) continue;
      const table = `${quoteIdent(RECORDS_SCHEMA)}.${quoteIdent(dataset.slug)}`;
      const keyType = columnTypeOf(dataset.keyType as FieldType);
      const columns = dataset.fields.map(
        (f) => `${identityText(quoteIdent(f.name), f.type)} AS ${quoteIdent(f.name)}`,
      );
      const [record] = await this.store.query<Record<string, string | null>>(
        `SELECT ${columns.join(', ')} FROM ${table} WHERE ${quoteIdent(dataset.keyField)} = $1::${keyType}`,
        [side.key],
      );
      if (record) out.push({ dataset: dataset.slug, recordKey: side.key, values: record });
    }
    // Who read a pair's records, and how many: the run and pair number, never the records.
    await this.audit.append({
      actorUserId: ctx.principal.userId,
      actorAgencyId: ctx.principal.agencyId,
      action: AuditAction.LINKAGE_PAIR_READ,
      decision: 'ALLOW',
      rowCount: out.length,
      details: { runId: run.id, pair },
    });
    return out;
  }

  /**
   * Decides whether the pair's two records are one person: the operator (any pair), or a steward of
   * the agency holding both records (NOT_FOUND otherwise, as for a missing pair). Kept (the latest
   * decision stands) and applied by every later run; audited.
   */
  async decide(
    ctx: RequestContext,
    runId: string,
    pair: number,
    same: boolean,
  ): Promise<LinkageReviewPairModel> {
    const run = isUuid(runId) ? await this.store.getRun(runId.toLowerCase()) : null;
    const steward = ctx.principal.role === Role.STEWARD;
    const [row] = run ? await this.rows(run.id, pair, steward ? ctx.principal.agencyId : null) : [];
    if (!run || !row) throw notFound('Linkage review pair');
    // The two records in a fixed order, so a pair has one decision whichever run proposed it.
    const x = [row.dataset_a, row.key_a] as const;
    const y = [row.dataset_b, row.key_b] as const;
    const [first, second] = x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]) ? [x, y] : [y, x];
    await this.store.transaction(async (client) => {
      // Ordered with retention, which deletes a destroyed record's pairs and decisions under the
      // same lock: the pair is read again here, and a pair gone since is no pair (nothing written).
      await this.store.lockDerived(client);
      const { rowCount } = await client.query(
        `INSERT INTO linkage_decision (dataset_a, key_a, dataset_b, key_b, same, decided_by, run_id)
         SELECT $1::uuid, $2::text, $3::uuid, $4::text, $5::boolean, $6::uuid, $7::uuid
          WHERE EXISTS (SELECT 1 FROM linkage_review_pair WHERE run_id = $7::uuid AND pair = $8::int)
         ON CONFLICT (dataset_a, key_a, dataset_b, key_b) DO UPDATE
           SET same = EXCLUDED.same, decided_by = EXCLUDED.decided_by, run_id = EXCLUDED.run_id,
               decided_at = clock_timestamp()`,
        [first[0], first[1], second[0], second[1], same, ctx.principal.userId, run.id, pair],
      );
      if (!rowCount) throw notFound('Linkage review pair');
      await this.audit.appendOnClient(client, {
        actorUserId: ctx.principal.userId,
        actorAgencyId: ctx.principal.agencyId,
        action: AuditAction.LINKAGE_PAIR_DECIDED,
        decision: 'ALLOW',
        reason: same ? 'one person' : 'not one person',
        details: { runId: run.id, pair, same },
      });
    });
    return (await this.pairs(ctx, run.id)).find((p) => p.pair === pair)!;
  }

  /**
   * Review rows of a run (one pair, or all), with each side's provider and the decision in force;
   * given an agency, only the pairs both of whose records it provided.
   */
  private rows(runId: string, pair: number | null, agencyId: string | null): Promise<ReviewRow[]> {
    return this.store.query<ReviewRow>(
      `SELECT r.pair, r.dataset_a, r.key_a, r.dataset_b, r.key_b, r.levels, r.weight,
              da.provider_agency_id AS provider_a, db.provider_agency_id AS provider_b, d.same AS decision
         FROM linkage_review_pair r
         JOIN dataset da ON da.id = r.dataset_a
         JOIN dataset db ON db.id = r.dataset_b
         LEFT JOIN linkage_decision d
           ON (d.dataset_a, d.key_a, d.dataset_b, d.key_b) = (r.dataset_a, r.key_a, r.dataset_b, r.key_b)
           OR (d.dataset_a, d.key_a, d.dataset_b, d.key_b) = (r.dataset_b, r.key_b, r.dataset_a, r.key_a)
        WHERE r.run_id = $1
          AND ($2::int IS NULL OR r.pair = $2)
          AND ($3::uuid IS NULL OR (da.provider_agency_id = $3 AND db.provider_agency_id = $3))
        ORDER BY r.pair`,
      [runId, pair, agencyId],
    );
  }
}
