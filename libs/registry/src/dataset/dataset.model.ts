import { Field, GraphQLISODateTime, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { AgencyModel } from '../agency/agency.model';
import { Classification, FieldType, IdentityRole } from './dataset-schema';

registerEnumType(FieldType, { name: 'FieldType' });
registerEnumType(Classification, { name: 'Classification' });
registerEnumType(IdentityRole, { name: 'IdentityRole' });

@ObjectType('DatasetField')
export class DatasetFieldModel {
  @Field() name!: string;
  @Field(() => FieldType) type!: FieldType;
  @Field(() => Classification) classification!: Classification;
  @Field(() => IdentityRole, { nullable: true }) identity!: IdentityRole | null;
  @Field() required!: boolean;
  @Field(() => String, { nullable: true }) description!: string | null;
}

/** A dataset's metadata: the catalog shows it to every signed-in user; its records stay behind agreements. */
@ObjectType('Dataset')
export class DatasetModel {
  @Field(() => ID) id!: string;
  @Field() slug!: string;
  @Field() title!: string;
  @Field(() => String, { nullable: true }) description!: string | null;
  @Field(() => AgencyModel) provider?: AgencyModel;
  providerAgencyId!: string;
  @Field() keyField!: string;
  @Field(() => String, { nullable: true }) subjectField!: string | null;
  @Field(() => [DatasetFieldModel]) fields!: DatasetFieldModel[];
  @Field(() => GraphQLISODateTime) createdAt!: Date;
}

@InputType()
export class FieldInput {
  @Field() name!: string;
  @Field(() => FieldType) type!: FieldType;
  @Field(() => Classification) classification!: Classification;
  @Field(() => IdentityRole, { nullable: true }) identity?: IdentityRole | null;
  @Field(() => Boolean, { nullable: true, defaultValue: false }) required?: boolean | null;
  @Field(() => String, { nullable: true }) description?: string | null;
}

@InputType()
export class RegisterDatasetInput {
  /** `^[a-z][a-z0-9_]{2,62}$`, unique; names the data-plane root field. */
  @Field() slug!: string;
  @Field() title!: string;
  @Field(() => String, { nullable: true }) description?: string | null;
  /** Unique record key; re-ingesting a key updates the record. */
  @Field() keyField!: string;
  /** The provider's own person id, used for consent. */
  @Field(() => String, { nullable: true }) subjectField?: string | null;
  @Field(() => [FieldInput]) fields!: FieldInput[];
  /**
   * Indexes to build besides those the broker builds itself (the key, the default page order, what
   * agreements' row filters use): each a list of 1 to 4 field names, for orderings and filters that
   * analysts use often. Additive to the contract.
   */
  @Field(() => [[String]], { nullable: true }) indexes?: string[][] | null;
}

@ObjectType('RowError')
export class RowErrorModel {
  /** 0-based index of the data row in the batch. */
  @Field(() => Int) row!: number;
  @Field(() => String, { nullable: true }) field!: string | null;
  @Field() message!: string;
}

@ObjectType('IngestReport')
export class IngestReportModel {
  @Field(() => Int) inserted!: number;
  @Field(() => Int) updated!: number;
  /** How many rows were invalid; when any is, nothing was written. */
  @Field(() => Int) rejected!: number;
  @Field(() => [RowErrorModel]) errors!: RowErrorModel[];
}
