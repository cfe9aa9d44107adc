import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { type AgreementContent, type FieldTransform, oversightRequired, releasedField } from '@broker/policy';
import type { FieldDefinition } from '@broker/registry';
import { statusOf } from '../agreement-status';
import { rowFilterShape } from './row-filter-shape';
import type { Register, RegisterAgreement, RegisterGrant, RegisterMonth } from './register.types';
import { Database } from '@broker/core';

interface AgreementRow {
  id: string;
  version: number;
  revoked_at: Date | null;
  content: AgreementContent;
  valid_from: Date;
  valid_until: Date;
  provider_agency_id: string;
  recipient_agency_id: string;
  provider: string;
  recipient: string;
}

interface DatasetRow {
  id: string;
  title: string;
  description: string | null;
  fields: (FieldDefinition & { description: string | null })[];
}

/** How stale the register may be served while a fresher one is computed in the background. */
export const REGISTER_MAX_STALE_MS = 5_000;

type RegisterEntry = { key: string; register: Register; json: string; html?: string; at: number };

/**
 * Computes the public register from the agreements and the counts the audit append keeps, in one
 * consistent snapshot, never scanning the audit log. It is cached: while the audit head has not
 * moved (every change to an agreement, a dataset or a purpose, and every data request, appends an
 * event) a request costs one primary-key read; when it has, a register at most
 * {@link REGISTER_MAX_STALE_MS} old is served while a fresh one is computed in the background, so a
 * scraper never waits for a computation while data requests keep the head moving. Each broker
 * instance keeps its own cache.
 */
@Injectable()
export class RegisterService {
  private cached: RegisterEntry | null = null;
  private building: Promise<RegisterEntry> | null = null;
  /** How stale a served register may be; 0 always waits for a fresh one (tests). */
  maxStaleMs = REGISTER_MAX_STALE_MS;

  constructor(
    private readonly dataSource: DataSource,
    private readonly db: Database,
  ) {}

  /** The register and its JSON text: cached, fresh, or at most a few seconds stale. */
  async current(): Promise<RegisterEntry> {
    const [{ seq }] = await this.dataSource.query<{ seq: string }[]>(
      `SELECT seq FROM audit_head WHERE id = 1`,
    );
    const cached = this.cached;
    if (cached && cached.key === seq) return cached;
    const refresh = this.refresh();
    if (cached && Date.now() - cached.at < this.maxStaleMs) {
      refresh.catch(() => undefined); // served stale; the next request sees the outcome
      return cached;
    }
    return refresh;
  }

  /** Computes the register once for every caller waiting meanwhile, and caches it. */
  private refresh(): Promise<RegisterEntry> {
    this.building ??= this.compute()
      .then((register) => {
        const entry: RegisterEntry = {
          key: String(register.auditHead.seq),
          register,
          json: JSON.stringify(register),
          at: Date.now(),
        };
        this.cached = entry;
        return entry;
      })
      .finally(() => {
        this.building = null;
      });
    return this.building;
  }

  /** Remembers the rendered page beside the register it was rendered from. */
  rememberHtml(key: string, html: string): void {
    if (this.cached?.key === key) this.cached.html = html;
  }

  /** Computes the register afresh (no cache), in one REPEATABLE READ snapshot. */
  compute(): Promise<Register> {
    return this.db.transaction(
      async ({ manager }) => {
        await manager.query('SET TRANSACTION READ ONLY');
        return this.build(manager);
      },
      { isolation: 'REPEATABLE READ' },
    );
  }

  private async build(manager: EntityManager): Promise<Register> {
    // One after another: the snapshot is one connection's, which runs one query at a time anyway.
    const [[head], agreements, approvals, datasets, purposes, months, attested] = await sequence([
      () =>
        manager.query<{ seq: string; hash: string; now: Date }[]>(
          `SELECT seq::text AS seq, hash, clock_timestamp() AS now FROM audit_head WHERE id = 1`,
        ),
      () =>
        manager.query<AgreementRow[]>(
          `SELECT a.id, a.in_force_version AS version, a.revoked_at, v.content, v.valid_from, v.valid_until,
                a.provider_agency_id, a.recipient_agency_id, p.name AS provider, r.name AS recipient
           FROM agreement a
           JOIN agreement_version v ON v.agreement_id = a.id AND v.version = a.in_force_version
           JOIN agency p ON p.id = a.provider_agency_id
           JOIN agency r ON r.id = a.recipient_agency_id
          ORDER BY a.created_at, a.id`,
        ),
      () =>
        manager.query<{ agreement_id: string; agency_id: string; name: string; at: Date }[]>(
          `SELECT ap.agreement_id, ap.agency_id, g.name, ap.at
           FROM agreement a
           JOIN agreement_approval ap ON ap.agreement_id = a.id AND ap.version = a.in_force_version
           JOIN agency g ON g.id = ap.agency_id
          ORDER BY ap.at, g.name`,
        ),
      () =>
        manager.query<DatasetRow[]>(
          `SELECT d.id, d.title, d.description,
                coalesce(json_agg(json_build_object('name', f.name, 'type', f.type,
                  'classification', f.classification, 'identity', f.identity, 'required', f.required,
                  'description', f.description) ORDER BY f.position) FILTER (WHERE f.name IS NOT NULL), '[]') AS fields
           FROM dataset d LEFT JOIN dataset_field f ON f.dataset_id = d.id
          GROUP BY d.id`,
        ),
      () => manager.query<{ code: string; description: string }[]>(`SELECT code, description FROM purpose`),
      () =>
        manager.query<
          { agreement_id: string; month: string; allowed: string; denied: string; rows: string }[]
        >(
          `SELECT agreement_id, to_char(month, 'YYYY-MM') AS month, allowed::text, denied::text,
                rows_released::text AS rows
           FROM register_month ORDER BY agreement_id, month`,
        ),
      () =>
        manager.query<{ agreement_id: string; through: Date }[]>(
          `SELECT agreement_id, max(through) AS through FROM destruction_attestation GROUP BY agreement_id`,
        ),
    ] as const);
    const retained = agreements.filter((a) => a.content.retentionDays);
    const unattested = retained.length
      ? await manager.query<{ agreement_id: string; rows: string; oldest: string }[]>(
          `SELECT d.agreement_id, sum(d.rows_released)::text AS rows, to_char(min(d.day), 'YYYY-MM-DD') AS oldest
             FROM unnest($1::uuid[], $2::int[]) AS x (id, days)
             JOIN register_release_day d ON d.agreement_id = x.id
             LEFT JOIN (SELECT agreement_id, max(through) AS through FROM destruction_attestation
                         WHERE agreement_id = ANY($1::uuid[]) GROUP BY agreement_id) t ON t.agreement_id = x.id
            WHERE ((d.day + 1 + x.days)::timestamp AT TIME ZONE 'UTC') <= $3::timestamptz
              AND (t.through IS NULL OR ((d.day + 1)::timestamp AT TIME ZONE 'UTC') > t.through)
            GROUP BY d.agreement_id`,
          [retained.map((a) => a.id), retained.map((a) => a.content.retentionDays), head.now],
        )
      : [];

    const datasetById = new Map(datasets.map((d) => [d.id, d]));
    const purposeText = new Map(purposes.map((p) => [p.code, p.description]));
    const monthsOf = groupBy(months, (m) => m.agreement_id);
    const approvalsOf = groupBy(approvals, (a) => a.agreement_id);
    const attestedOf = new Map(attested.map((a) => [a.agreement_id, a.through]));
    const unattestedOf = new Map(unattested.map((u) => [u.agreement_id, u]));
    const shapes = new Map(datasets.map((d) => [d.id, { fields: d.fields }]));

    return {
      generatedAt: head.now.toISOString(),
      auditHead: { seq: Number(head.seq), hash: head.hash },
      agreements: agreements.map((a): RegisterAgreement => {
        const content = a.content;
        const past = unattestedOf.get(a.id);
        return {
          id: a.id,
          title: content.title,
          provider: a.provider,
          recipient: a.recipient,
          purposes: content.purposes.map((code) => ({ code, description: purposeText.get(code) ?? null })),
          legalBasis: content.legalBasis,
          communityBenefit: content.communityBenefit ?? null,
          validFrom: a.valid_from.toISOString(),
          validUntil: a.valid_until.toISOString(),
          status: statusOf(
            { revokedAt: a.revoked_at, inForce: { validFrom: a.valid_from, validUntil: a.valid_until } },
            head.now,
          ),
          version: a.version,
          oversightRequired: oversightRequired(content, shapes),
          approvals: (approvalsOf.get(a.id) ?? []).map((ap) => ({
            agency: ap.name,
            oversight: ap.agency_id !== a.provider_agency_id && ap.agency_id !== a.recipient_agency_id,
            at: ap.at.toISOString(),
          })),
          retentionDays: content.retentionDays,
          grants: content.grants.map((g) => grantOf(g, datasetById.get(g.datasetId))),
          months: (monthsOf.get(a.id) ?? []).map((m): RegisterMonth => ({
            month: m.month,
            allowed: Number(m.allowed),
            denied: Number(m.denied),
            rowsReleased: Number(m.rows),
          })),
          unattestedPastRetention: content.retentionDays
            ? { rows: past ? Number(past.rows) : 0, oldestDay: past?.oldest ?? null }
            : null,
          destructionAttestedThrough: attestedOf.get(a.id)?.toISOString() ?? null,
          revokedAt: a.revoked_at?.toISOString() ?? null,
        };
      }),
    };
  }
}

function grantOf(grant: AgreementContent['grants'][number], dataset: DatasetRow | undefined): RegisterGrant {
  const fields = new Map(dataset?.fields.map((f) => [f.name, f]));
  return {
    dataset: dataset?.title ?? '(a dataset no longer registered)',
    datasetDescription: dataset?.description ?? null,
    access: grant.access,
    requireConsent: grant.requireConsent,
    minCellSize: grant.minCellSize,
    linkage: grant.linkage,
    fields: grant.fields.map((f) => {
      const definition = fields.get(f.name);
      return {
        released: definition ? releasedName(definition, f.transform) : f.name,
        field: f.name,
        transform: f.transform,
        classification: definition?.classification ?? null,
        description: definition?.description ?? null,
        justification: f.justification ?? null,
      };
    }),
    rowFilter: rowFilterShape(grant.rowFilter),
  };
}

function releasedName(field: FieldDefinition, transform: FieldTransform): string {
  try {
    return releasedField(field, transform).name;
  } catch {
    return field.name;
  }
}

/** Runs the queries one after another, in order. */
async function sequence<T extends readonly (() => Promise<unknown>)[]>(
  queries: T,
): Promise<{ -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  const results: unknown[] = [];
  for (const query of queries) results.push(await query());
  return results as { -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> };
}

function groupBy<T>(rows: T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = out.get(k);
    if (list) list.push(row);
    else out.set(k, [row]);
  }
  return out;
}
