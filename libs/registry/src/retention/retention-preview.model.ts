import { Field, ID, Int, ObjectType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';

/** What a retention would destroy, counted before it is set: see `retentionPreview`. */
@ObjectType('RetentionPreview', {
  description:
    "What a proposed retention of a dataset would destroy, counted as the daily retention job would at `asOf`, beside what its current retention would: for the dataset's provider's stewards, before they change it. Changes nothing.",
})
export class RetentionPreviewModel {
  @Field(() => ID, { description: 'The dataset.' }) datasetId!: string;
  @Field(() => Int, {
    nullable: true,
    description: 'The proposed retention in days, as validated; null for no retention.',
  })
  retentionDays!: number | null;
  @Field(() => String, {
    nullable: true,
    description: 'The DATE or DATETIME field the proposed retention is measured from; null for no retention.',
  })
  retentionField!: string | null;
  @Field(() => Int, {
    description:
      "Records the proposed retention would destroy: those whose retentionField is before `cutoff`, exactly the job's rule. A run later than `asOf` destroys these and any that pass the cutoff meanwhile. 0 for no retention.",
  })
  destroyed!: number;
  @Field(() => Int, {
    description:
      "Records the dataset's current retention would destroy at the same instant (0 when it has none): what the next run destroys if nothing changes.",
  })
  destroyedByCurrent!: number;
  @Field(() => Int, {
    description:
      'Records whose proposed retentionField is null: retention never destroys them, as the job keeps them (0 for no retention).',
  })
  keptWithoutDate!: number;
  @Field(() => Int, { description: "The dataset's records, all of them, at `asOf`." })
  records!: number;
  @Field(() => DateTimeScalar, {
    nullable: true,
    description:
      'Records whose proposed retentionField is before this are destroyed: `asOf` less retentionDays days (for a DATE field, compared by calendar day, a record dated that day kept). Null for no retention.',
  })
  cutoff!: Date | null;
  @Field(() => DateTimeScalar, {
    description: 'The instant the records were counted at: the cutoffs are measured back from it.',
  })
  asOf!: Date;
}
