import {
  Column,
  CreateDateColumn,
  Entity,
  OneToMany,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  ManyToOne,
  JoinColumn,
} from 'typeorm';
import type { Classification, FieldType, IdentityRole } from './dataset-schema';

@Entity('dataset')
export class DatasetEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'provider_agency_id' }) providerAgencyId!: string;
  @Column('text') slug!: string;
  @Column('text', { name: 'type_name' }) typeName!: string;
  @Column('text') title!: string;
  @Column('text', { nullable: true }) description!: string | null;
  @Column('text', { name: 'key_field' }) keyField!: string;
  @Column('text', { name: 'subject_field', nullable: true }) subjectField!: string | null;
  @Column('uuid', { name: 'created_by' }) createdBy!: string;
  @Column('int', { name: 'retention_days', nullable: true }) retentionDays!: number | null;
  @Column('text', { name: 'retention_field', nullable: true }) retentionField!: string | null;
  /** The indexes its steward declared, each a list of field names (see DatasetService.ensureIndexes). */
  @Column('jsonb', { name: 'declared_indexes', default: () => "'[]'::jsonb" }) declaredIndexes!: string[][];
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @OneToMany(() => DatasetFieldEntity, (f) => f.dataset, { cascade: ['insert'] })
  fields!: DatasetFieldEntity[];
}

@Entity('dataset_field')
export class DatasetFieldEntity {
  @PrimaryColumn('uuid', { name: 'dataset_id' }) datasetId!: string;
  @PrimaryColumn('text') name!: string;
  @Column('int') position!: number;
  @Column('text') type!: FieldType;
  @Column('text') classification!: Classification;
  @Column('text', { nullable: true }) identity!: IdentityRole | null;
  @Column('boolean') required!: boolean;
  @Column('text', { nullable: true }) description!: string | null;
  @ManyToOne(() => DatasetEntity, (d) => d.fields, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'dataset_id' })
  dataset!: DatasetEntity;
}
