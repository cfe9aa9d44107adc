import { Field, Float, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';

/** One comparison of a reviewed pair: its level and what the level weighs; never a value. */
@ObjectType('LinkageReviewLevel', {
  description:
    'One comparison of a reviewed pair: how well the two values agree, and what that weighs; never a value.',
})
export class LinkageReviewLevelModel {
  @Field(() => String, { description: 'What is compared: first_name, date_of_birth, ssn, zip, ...' })
  comparison!: string;
  @Field(() => String, {
    description: "The level's name ('exact', 'one_typo', ...), or 'missing' when either record has no value.",
  })
  level!: string;
  @Field(() => Float, { description: "What the level adds to the pair's match weight (0 when missing)." })
  weight!: number;
}

/** A pair near a run's threshold, as a comparison pattern: the operator reads no record. */
@ObjectType('LinkageReviewPair', {
  description:
    "A pair of records near a run's threshold, where the model is least sure, shown as its comparison " +
    'pattern so that a reviewer can judge it without reading a record.',
})
export class LinkageReviewPairModel {
  @Field(() => Int, { description: "The pair's number within its run (1 is the nearest to the threshold)." })
  pair!: number;
  @Field(() => Float, { description: "The pair's match weight: log2 odds that it is one person." })
  weight!: number;
  @Field(() => Float, {
    description: 'The probability that the two records are one person: 2^w / (1 + 2^w).',
  })
  probability!: number;
  @Field(() => [LinkageReviewLevelModel], { description: 'Each comparison, its level and its weight.' })
  levels!: LinkageReviewLevelModel[];
  @Field(() => Boolean, {
    nullable: true,
    description:
      "A reviewer's decision on the two records (true: one person; false: two), kept across runs and " +
      'applied by every later run; null if none.',
  })
  decision!: boolean | null;
}

/** A record of a reviewed pair both of whose records are the steward's agency's. */
@ObjectType('LinkagePairRecord', {
  description:
    "A record of a reviewed pair both of whose records the steward's agency holds: its identity fields only.",
})
export class LinkagePairRecordModel {
  @Field(() => String, { description: "The slug of the steward's dataset holding the record." })
  dataset!: string;
  @Field(() => String, { description: "The record's key in that dataset." }) recordKey!: string;
  @Field(() => GraphQLJSONObject, { description: "The record's identity fields, by field name, as text." })
  values!: Record<string, string | null>;
}
