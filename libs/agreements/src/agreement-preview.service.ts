import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { type RequestContext, authorizeType } from '@broker/auth';
import { BrokerError, Database, ErrorCode } from '@broker/core';
import {
  type AgreementContent,
  PolicyError,
  SqlParams,
  populationSql,
  validateAgreementContent,
} from '@broker/policy';
import {
  type DatasetEntity,
  DatasetService,
  type DatasetShapeRecord,
  PurposeService,
  recordTable,
} from '@broker/registry';
import type { AgreementInput } from './agreement.model';
import type { PurposePreviewModel } from './agreement-preview.model';
import { previewContent } from './agreement-preview';
import { authorizeParty, checkParties, unindexableRowFilters } from './agreement.service';

/**
 * Previews an agreement before it is proposed, amended or approved: what its recipient would see
 * for each purpose. Validates exactly as `proposeAgreement` does and changes nothing.
 */
@Injectable()
export class AgreementPreviewService {
  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    private readonly datasets: DatasetService,
    private readonly purposes: PurposeService,
  ) {}

  /** The preview of agreement content, for a steward of either party. */
  async preview(ctx: RequestContext, input: AgreementInput): Promise<PurposePreviewModel[]> {
    const { principal } = ctx;
    authorizeType(principal, 'preview', 'Agreement');
    const { content, shapes } = await this.validate(input, (valid) =>
      authorizeParty(principal, 'preview', valid),
    );
    let purposes: ReturnType<typeof previewContent>;
    try {
      purposes = previewContent(content, shapes);
    } catch (error) {
      // Validated content always compiles; a refusal here is a policy rule validation missed.
      if (error instanceof PolicyError) throw new BrokerError(ErrorCode.BAD_USER_INPUT, error.message);
      throw error;
    }
    const entities = new Map<string, DatasetEntity>();
    for (const id of shapes.keys()) {
      const entity = await this.datasets.get(ctx, id);
      if (entity) entities.set(id, entity);
    }
    // Record counts are the provider's to see: the recipient learns them only through the data plane.
    const counts =
      principal.agencyId === content.providerAgencyId ? await this.countReleased(content, shapes) : null;
    return purposes.map(({ purpose, grants }) => ({
      purpose,
      datasets: grants.map((grant) => ({
        dataset: entities.get(grant.datasetId)!,
        access: grant.access,
        fields: grant.fields,
        rowFilter: grant.rowFilter,
        requireConsent: grant.requireConsent,
        minCellSize: grant.minCellSize,
        personKey: grant.personKey,
        rowsReleased: counts?.get(countKey(grant.datasetId, grant.requireConsent ? purpose : null)) ?? null,
      })),
    }));
  }

  /**
   * The same validation, and the same messages, as `AgreementService` applies to a proposal; the
   * caller is `authorized` (or refused) before any row filter is tried on a record table.
   */
  private async validate(
    input: AgreementInput,
    authorized: (content: AgreementContent) => void,
  ): Promise<{ content: AgreementContent; shapes: Map<string, DatasetShapeRecord> }> {
    const ids = Array.isArray(input.grants) ? input.grants.map((g) => g?.datasetId).filter(Boolean) : [];
    const [shapes, purposes] = await Promise.all([this.datasets.shapes(ids), this.purposes.codes()]);
    const result = validateAgreementContent(input, { datasets: shapes, purposes }, { oversightText: false });
    if (result.ok) authorized(result.content);
    const problems = result.ok
      ? await unindexableRowFilters(this.datasets, input, result.content, shapes)
      : result.problems;
    if (!result.ok || problems.length) {
      throw new BrokerError(
        ErrorCode.BAD_USER_INPUT,
        `The agreement is invalid: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`,
        { reason: 'INVALID_AGREEMENT', details: problems },
      );
    }
    await checkParties(this.dataSource, result.content);
    return { content: result.content, shapes };
  }

  /**
   * Rows passing each grant's row filter, and for a grant that requires consent, holding consent
   * to the purpose; one count per grant (per grant and purpose with consent), in one read-only snapshot.
   */
  private async countReleased(
    content: AgreementContent,
    shapes: Map<string, DatasetShapeRecord>,
  ): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    await this.db.transaction(
      async ({ manager }) => {
        await manager.query(`SET TRANSACTION READ ONLY`);
        await manager.query(`SET LOCAL statement_timeout = '10s'`);
        for (const grant of content.grants) {
          const shape = shapes.get(grant.datasetId)!;
          const purposes = grant.requireConsent ? content.purposes : [null];
          for (const purpose of purposes) {
            const params = new SqlParams();
            const population = populationSql(grant, shape, purpose === null ? [] : [purpose], 't', params);
            const [row] = await manager.query<{ n: number }[]>(
              `SELECT count(*)::int AS n FROM ${recordTable(shape.slug)} t WHERE ${population}`,
              params.values,
            );
            counts.set(countKey(grant.datasetId, purpose), row.n);
          }
        }
      },
      { isolation: 'REPEATABLE READ' },
    );
    return counts;
  }
}

/** A count's key: per dataset, and per purpose where consent makes the count depend on it. */
function countKey(datasetId: string, purpose: string | null): string {
  return `${datasetId}\u0000${purpose ?? ''}`;
}
