import { Column, Entity, PrimaryColumn, type ValueTransformer } from 'typeorm';

// seq is a bigint; the log would need 2^53 events before a JavaScript number could not hold it.
const bigintAsNumber: ValueTransformer = {
  to: (value: number | null) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/**
 * One row of `audit_event`, for reading. Rows are written only by `AuditService.append` (a database
 * trigger refuses UPDATE and DELETE); never `save` this entity.
 */
@Entity('audit_event')
export class AuditEventEntity {
  @PrimaryColumn('bigint', { transformer: bigintAsNumber }) seq!: number;
  @Column('timestamptz') at!: Date;
  @Column('uuid', { name: 'actor_user_id', nullable: true }) actorUserId!: string | null;
  @Column('uuid', { name: 'actor_agency_id', nullable: true }) actorAgencyId!: string | null;
  @Column('text') action!: string;
  @Column('text') decision!: 'ALLOW' | 'DENY';
  @Column('text', { nullable: true }) reason!: string | null;
  @Column('text', { nullable: true }) purpose!: string | null;
  @Column('uuid', { name: 'dataset_id', nullable: true }) datasetId!: string | null;
  @Column('uuid', { name: 'agreement_id', nullable: true }) agreementId!: string | null;
  @Column('int', { name: 'agreement_version', nullable: true }) agreementVersion!: number | null;
  @Column('text', { array: true, nullable: true }) fields!: string[] | null;
  @Column('int', { name: 'row_count', nullable: true }) rowCount!: number | null;
  @Column('jsonb', { nullable: true }) details!: Record<string, unknown> | null;
  @Column('text', { name: 'prev_hash' }) prevHash!: string;
  @Column('text') hash!: string;
}
