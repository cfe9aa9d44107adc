import { Field, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { FieldTransform, GrantAccess } from '@broker/policy';
import { DatasetModel } from '@broker/registry';

/** A field as the recipient would see it in the data plane. */
@ObjectType('ReleasedFieldPreview')
export class ReleasedFieldPreviewModel {
  /** The released name (`dob_year` for a generalised `dob`). */
  @Field() name!: string;
  /** The data plane's GraphQL type: String, Int, Float, Boolean, Date or DateTime. */
  @Field() type!: string;
  @Field(() => FieldTransform) transform!: FieldTransform;
  /** The provider's field it is computed from. */
  @Field() sourceField!: string;
}

/** One dataset of an agreement as the recipient would see it for one purpose. */
@ObjectType('DatasetPreview')
export class DatasetPreviewModel {
  @Field(() => DatasetModel) dataset!: DatasetModel;
  @Field(() => GrantAccess) access!: GrantAccess;
  @Field(() => [ReleasedFieldPreviewModel]) fields!: ReleasedFieldPreviewModel[];
  /** The row filter in its canonical form; null when every row is granted. */
  @Field(() => GraphQLJSONObject, { nullable: true }) rowFilter!: Record<string, unknown> | null;
  @Field() requireConsent!: boolean;
  @Field(() => Int) minCellSize!: number;
  /** Whether the linkage pseudonym `personKey` is released. */
  @Field() personKey!: boolean;
  /**
   * Rows the recipient could read now for this purpose: those passing the row filter (and holding
   * consent when it is required), counted in SQL. Only for the provider's steward; null otherwise.
   */
  @Field(() => Int, { nullable: true }) rowsReleased!: number | null;
}

/** What the recipient would see under one purpose of an agreement. */
@ObjectType('PurposePreview')
export class PurposePreviewModel {
  @Field() purpose!: string;
  @Field(() => [DatasetPreviewModel]) datasets!: DatasetPreviewModel[];
}
