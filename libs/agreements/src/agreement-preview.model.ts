import { Field, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { FieldTransform, GrantAccess } from '@broker/policy';
import { DatasetModel } from '@broker/registry';

/** A field as the recipient would see it in the data plane. */
@ObjectType('ReleasedFieldPreview', {
  description:
    'A field as the recipient would see it in the data plane, under the name and type it is released as.',
})
export class ReleasedFieldPreviewModel {
  @Field({ description: 'The released name: `dob` when RAW, `dob_year` when a DATE `dob` is generalised.' })
  name!: string;
  @Field({ description: 'Its type in the data plane: String, Int, Float, Boolean, Date or DateTime.' })
  type!: string;
  @Field(() => FieldTransform, { description: 'The transform the grant applies to it.' })
  transform!: FieldTransform;
  @Field({ description: "The provider's field it is computed from." }) sourceField!: string;
}

/** One dataset of an agreement as the recipient would see it for one purpose. */
@ObjectType('DatasetPreview', {
  description: 'One granted dataset as the recipient would see it for one purpose.',
})
export class DatasetPreviewModel {
  @Field(() => DatasetModel, { description: 'The dataset granted.' }) dataset!: DatasetModel;
  @Field(() => GrantAccess, { description: 'ROWS, or AGGREGATE_ONLY (counts only).' }) access!: GrantAccess;
  @Field(() => [ReleasedFieldPreviewModel], {
    description: 'Every released field; nothing else is released.',
  })
  fields!: ReleasedFieldPreviewModel[];
  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: 'The row filter in its canonical form; null when every row is granted.',
  })
  rowFilter!: Record<string, unknown> | null;
  @Field({ description: 'Whether only records of subjects who consented to the purpose are released.' })
  requireConsent!: boolean;
  @Field(() => Int, { description: 'The smallest count an aggregate of this dataset may show.' })
  minCellSize!: number;
  @Field({ description: 'Whether the linkage pseudonym `personKey` is released (the grant has linkage).' })
  personKey!: boolean;
  @Field(() => Int, {
    nullable: true,
    description:
      'How many records the recipient could read now for this purpose: those passing the row filter ' +
      "and, where required, holding consent. Shown to the provider's steward only; null for anyone else.",
  })
  rowsReleased!: number | null;
}

/** What the recipient would see under one purpose of an agreement. */
@ObjectType('PurposePreview', {
  description: 'What the recipient would see under one purpose of the agreement: every dataset it grants.',
})
export class PurposePreviewModel {
  @Field({ description: 'The purpose code.' }) purpose!: string;
  @Field(() => [DatasetPreviewModel], {
    description: 'The datasets granted for it, as the recipient sees them.',
  })
  datasets!: DatasetPreviewModel[];
}
