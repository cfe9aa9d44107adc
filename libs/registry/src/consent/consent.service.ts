import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService, auditActor } from '@broker/audit';
import type { RequestContext } from '@broker/auth';
import { badInput, Database } from '@broker/core';
import { DatasetService } from '../dataset/dataset.service';
import { PurposeService } from '../purpose/purpose.service';
import type { ConsentInput, ConsentModel } from './consent.model';
import { subjectIdInput } from './subject-id';

/**
 * Consent per subject and purpose, recorded by the provider's stewards. Every record is kept; the
 * latest is in force, and the data plane reads it on the next request.
 */
@Injectable()
export class ConsentService {
  constructor(
    private readonly db: Database,
    private readonly dataSource: DataSource,
    private readonly datasets: DatasetService,
    private readonly purposes: PurposeService,
    private readonly audit: AuditService,
  ) {}

  /** Records a subject's consent (or its withdrawal) for a purpose. */
  async record(ctx: RequestContext, input: ConsentInput): Promise<ConsentModel> {
    const dataset = await this.datasets.requireWritable(ctx, input.datasetId, 'recordConsent');
    if (!dataset.subjectField) {
      throw badInput('The dataset has no subjectField: consent is recorded per subject');
    }
    // Exactly as given: the records' subject field is stored untrimmed, and the data plane joins on it.
    const subjectId = subjectIdInput(
      input.subjectId,
      'subjectId',
      dataset.fields.find((f) => f.name === dataset.subjectField)?.type,
    );
    if (!(await this.purposes.codes()).has(input.purpose)) {
      // The code as typed, cut short: an error message does not carry back whatever was sent.
      const typed = input.purpose.length > 64 ? `${input.purpose.slice(0, 64)}…` : input.purpose;
      throw badInput(`Unknown purpose ${JSON.stringify(typed)}: name one of the purposes defined`);
    }
    return this.db.transaction(
      async ({ manager }) => {
        const [event] = await manager.query<{ id: string; recorded_at: Date }[]>(
          `INSERT INTO consent_event (dataset_id, subject_id, purpose, granted, recorded_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING id, recorded_at`,
          [dataset.id, subjectId, input.purpose, input.granted, ctx.principal.userId],
        );
        await manager.query(
          `INSERT INTO consent_current (dataset_id, purpose, subject_id, granted, event_id) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (dataset_id, purpose, subject_id) DO UPDATE SET granted = excluded.granted, event_id = excluded.event_id`,
          [dataset.id, input.purpose, subjectId, input.granted, event.id],
        );
        // The subject id stays out of the audit log, which many may read; the consent history keeps it.
        await this.audit.append(
          {
            ...auditActor(ctx),
            action: AuditAction.CONSENT_RECORDED,
            decision: 'ALLOW',
            datasetId: dataset.id,
            purpose: input.purpose,
            reason: input.granted ? 'consent granted' : 'consent withdrawn or refused',
          },
          manager,
        );
        return {
          id: event.id,
          datasetId: dataset.id,
          subjectId,
          purpose: input.purpose,
          granted: input.granted,
          recordedAt: event.recorded_at,
        };
      },
      { carrier: ctx },
    );
  }
}
