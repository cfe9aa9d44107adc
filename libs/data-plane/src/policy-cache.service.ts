import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AgreementService, type InForceAgreement } from '@broker/agreements';
import { type CompiledAgreement, compileAgreement } from '@broker/policy';
import { DatasetService, type DatasetShapeRecord } from '@broker/registry';
import { type CallerSchema, buildCallerSchema } from './caller-schema';

interface AgencyPolicy {
  stamp: number;
  compiled: CompiledAgreement[];
  schemas: Map<string, CallerSchema | null>;
}

/** What a caller may use at this instant: its active agreements and the schema they make. */
export interface CallerPolicy {
  active: CompiledAgreement[];
  schema: CallerSchema | null;
  shapes: Map<string, DatasetShapeRecord>;
  /** The secret that seals page cursors (see cursor.ts), the same on every instance. */
  cursorSecret: Buffer;
}

/**
 * Compiled policy per recipient agency. Every request reads its agency's policy stamp (one indexed
 * row), so a change made through any broker instance is seen by every instance on its next request; windows
 * are checked against the clock at every request, so access starts and stops exactly on time.
 */
@Injectable()
export class PolicyCache {
  private readonly agencies = new Map<string, AgencyPolicy>();
  private readonly shapes = new Map<string, DatasetShapeRecord>();
  /** Read once: the secret never changes, and every instance reads the same row. */
  private cursorSecret: Buffer | undefined;

  constructor(
    private readonly agreements: AgreementService,
    private readonly datasets: DatasetService,
    private readonly dataSource: DataSource,
  ) {}

  /** The caller's active agreements and schema at `now`: reads its agency's policy stamp, then the cache. */
  async forAgency(agencyId: string, now: Date): Promise<CallerPolicy> {
    const stamp = await this.agreements.stamp(agencyId);
    return this.cached(agencyId, stamp, now) ?? this.reload(agencyId, now);
  }

  /**
   * The caller's policy at `now` when the cache holds it compiled at `stamp` (a stamp the caller has
   * just read from the database), else undefined. No I/O.
   */
  cached(agencyId: string, stamp: number, now: Date): CallerPolicy | undefined {
    const policy = this.agencies.get(agencyId);
    return policy && policy.stamp === stamp ? this.at(policy, now) : undefined;
  }

  /**
   * The policy this instance last compiled for the agency, at `now`, and the stamp it was compiled
   * at; undefined if none. Whether it is still current is for the caller to check, in the snapshot
   * it reads under it. No I/O.
   */
  latest(agencyId: string, now: Date): { stamp: number; policy: CallerPolicy } | undefined {
    const policy = this.agencies.get(agencyId);
    return policy && { stamp: policy.stamp, policy: this.at(policy, now) };
  }

  /** Loads the caller's policy afresh (at the stamp of that moment), caches it, and returns it at `now`. */
  async reload(agencyId: string, now: Date): Promise<CallerPolicy> {
    const policy = await this.load(agencyId);
    this.agencies.set(agencyId, policy);
    return this.at(policy, now);
  }

  private at(policy: AgencyPolicy, now: Date): CallerPolicy {
    const active = policy.compiled.filter((a) => a.validFrom <= now && now < a.validUntil);
    const key = active.map((a) => `${a.id}@${a.version}`).join(',');
    let schema = policy.schemas.get(key);
    if (schema === undefined) {
      schema = buildCallerSchema(active, this.shapes);
      policy.schemas.set(key, schema);
    }
    return { active, schema, shapes: this.shapes, cursorSecret: this.cursorSecret! };
  }

  private async load(agencyId: string): Promise<AgencyPolicy> {
    if (!this.cursorSecret) {
      const [row] = await this.dataSource.query<{ cursor_key: Buffer }[]>(
        `SELECT cursor_key FROM data_plane_secret WHERE id = 1`,
      );
      this.cursorSecret = row.cursor_key;
    }
    const { stamp, agreements } = await this.agreements.inForceForRecipient(agencyId);
    const ids = agreements.flatMap((a) => a.content.grants.map((g) => g.datasetId));
    const missing = ids.filter((id) => !this.shapes.has(id));
    // Datasets never change shape once registered, so shapes are cached for the process's life.
    if (missing.length)
      for (const [id, shape] of await this.datasets.shapes(missing)) this.shapes.set(id, shape);
    return { stamp, compiled: agreements.map((a) => this.compile(a)), schemas: new Map() };
  }

  private compile(agreement: InForceAgreement): CompiledAgreement {
    return compileAgreement(
      {
        id: agreement.id,
        version: agreement.version,
        purposes: agreement.content.purposes,
        hmacKey: agreement.hmacKey,
        validFrom: agreement.validFrom,
        validUntil: agreement.validUntil,
      },
      agreement.content.grants,
      this.shapes,
    );
  }
}
