import { Field, Float, Int, ObjectType } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';

/** One comparison of a reviewed pair: its level and what the level weighs; never a value. */
@ObjectType('LinkageReviewLevel')
export class LinkageReviewLevelModel {
  @Field(() => String) comparison!: string;
  /** The level's name ('exact', 'one_typo', …), or 'missing' when either record has no value. */
  @Field(() => String) level!: string;
  /** What the level adds to the pair's match weight (0 when missing). */
  @Field(() => Float) weight!: number;
}

/** A pair near a run's threshold, as a comparison pattern: the operator reads no record. */
@ObjectType('LinkageReviewPair')
export class LinkageReviewPairModel {
  /** The pair's number within its run (1 is the nearest to the threshold). */
  @Field(() => Int) pair!: number;
  /** The pair's match weight (log2 odds, term frequencies included). */
  @Field(() => Float) weight!: number;
  /** The probability that the two records are one person: 2^w / (1 + 2^w). */
  @Field(() => Float) probability!: number;
  @Field(() => [LinkageReviewLevelModel]) levels!: LinkageReviewLevelModel[];
  /** A reviewer's decision on the two records (true: one person), kept across runs; null if none. */
  @Field(() => Boolean, { nullable: true }) decision!: boolean | null;
}

/** A steward's own side of a reviewed pair: one of its agency's records. */
@ObjectType('LinkagePairRecord')
export class LinkagePairRecordModel {
  /** The dataset's slug. */
  @Field(() => String) dataset!: string;
  @Field(() => String) recordKey!: string;
  /** The record's identity fields, by field name, as text. */
  @Field(() => GraphQLJSONObject) values!: Record<string, string | null>;
}
