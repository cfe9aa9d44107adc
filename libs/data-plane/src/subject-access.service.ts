import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService, auditActor, releaseDigestSql } from '@broker/audit';
import type { RequestContext } from '@broker/auth';
import { BrokerError, ErrorCode, badInput, quoteIdent } from '@broker/core';
import { DatasetService, recordTable, subjectIdInput } from '@broker/registry';
import type { SubjectAccessModel } from './subject-access.model';

/**
 * "Who saw my record": every release of one subject's rows, read from the records each release
 * returned (release_record), which the audit chain vouches for through each event's digest.
 */
@Injectable()
export class SubjectAccessService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly datasets: DatasetService,
    private readonly audit: AuditService,
  ) {}

  /** The releases of a subject's rows, oldest first; for a steward of the dataset's provider. */
  async report(ctx: RequestContext, datasetId: string, subjectId: string): Promise<SubjectAccessModel[]> {
    // Another agency's dataset is answered like a missing one; another role is refused.
    const dataset = await this.datasets.requireWritable(ctx, datasetId, 'reportSubjectAccess');
    if (!dataset.subjectField) {
      throw badInput('The dataset has no subjectField: releases are reported per subject');
    }
    // The same identity as consent and the records: the id exactly as given.
    const subject = subjectIdInput(
      subjectId,
      'subjectId',
      dataset.fields.find((f) => f.name === dataset.subjectField)?.type,
    );
    const rows = await this.dataSource.query<
      {
        seq: string;
        at: Date;
        actor_agency_id: string;
        purpose: string;
        agreement_id: string;
        agreement_version: number;
        action: string;
        fields: string[];
        intact: boolean;
      }[]
    >(subjectReleasesSql(dataset.slug, dataset.subjectField), [dataset.id, subject]);
    const altered = rows.find((row) => !row.intact);
    if (altered) {
      // The list of released records no longer matches what the chain recorded: say so, never guess.
      throw new BrokerError(
        ErrorCode.CONFLICT,
        `The records released by audit event ${altered.seq} were altered after the fact; run verifyAuditChain`,
      );
    }
    await this.audit.append({
      ...auditActor(ctx),
      action: AuditAction.SUBJECT_ACCESS_REPORT,
      decision: 'ALLOW',
      datasetId: dataset.id,
      rowCount: rows.length,
    });
    return rows.map((row) => ({
      at: row.at,
      agencyId: row.actor_agency_id,
      purpose: row.purpose,
      agreementId: row.agreement_id,
      agreementVersion: row.agreement_version,
      action: row.action,
      fields: row.fields,
    }));
  }
}

/**
 * The releases that returned a record of subject $2 of dataset $1 (its records now, and those
 * destroyed past retention), with the check of each release's id list against its event's digest.
 */
export function subjectReleasesSql(slug: string, subjectField: string): string {
  return `WITH subject AS MATERIALIZED (
         SELECT (SELECT coalesce(array_agg(t."_rid"), '{}') FROM ${recordTable(slug)} t
                  WHERE t.${quoteIdent(subjectField)}::text = $2)
                -- records destroyed past retention leave their subject and row id behind
                || (SELECT coalesce(array_agg(x.rid), '{}') FROM destroyed_record x
                     WHERE x.dataset_id = $1 AND x.subject_id = $2) AS rids),
       -- The release index holds every release up to some point (ReleaseIndexer); the releases
       -- after it are searched where they are recorded.
       indexed AS MATERIALIZED (SELECT coalesce(max(audit_seq), 0) AS through FROM release_index),
       found AS (
         SELECT i.audit_seq FROM release_index i
          WHERE i.dataset_id = $1 AND i.rids && (SELECT rids FROM subject)
         UNION
         SELECT b.audit_seq FROM release_record b
          WHERE b.audit_seq > (SELECT through FROM indexed)
            AND b.dataset_id = $1 AND b.rids && (SELECT rids FROM subject))
       SELECT e.seq, e.at, e.actor_agency_id, e.purpose, e.agreement_id, e.agreement_version, e.action, e.fields,
              e.details ->> 'releaseDigest' = ${releaseDigestSql('r.rids')} AS intact
         FROM found f
         JOIN release_record r ON r.audit_seq = f.audit_seq
         JOIN audit_event e ON e.seq = r.audit_seq
        ORDER BY e.seq`;
}
