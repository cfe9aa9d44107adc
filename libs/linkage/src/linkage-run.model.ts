import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';

/** Where a linkage run is. */
export enum LinkageStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}

registerEnumType(LinkageStatus, { name: 'LinkageStatus' });

/** What started a run. */
export type LinkageTrigger = 'MANUAL' | 'INGESTION';

@ObjectType('LinkageStats')
export class LinkageStatsModel {
  /** Records with identity fields that took part. */
  @Field(() => Int) records!: number;
  /** Record pairs compared (after blocking). */
  @Field(() => Int) candidatePairs!: number;
  /** Compared pairs whose match weight reached the threshold. */
  @Field(() => Int) links!: number;
  /** Distinct persons: clusters of linked records, and records linked to none. */
  @Field(() => Int) persons!: number;
  /** Per identity role, values present but not understood (missing to the comparisons). */
  @Field(() => [UnparsedValuesModel]) unparsed!: UnparsedValuesModel[];
  /** Per blocking rule, the pairs it produced; their sum is candidatePairs (the union). */
  @Field(() => [BlockingRulePairsModel]) pairsByRule!: BlockingRulePairsModel[];
}

/** Values of one identity role that were present but not understood (an SSN that is no SSN). */
@ObjectType('UnparsedValues')
export class UnparsedValuesModel {
  /** The identity role, as IdentityRole spells it. */
  @Field(() => String) role!: string;
  @Field(() => Int) values!: number;
}

/** Pairs a blocking rule produced first (a pair is compared under the first rule that finds it). */
@ObjectType('BlockingRulePairs')
export class BlockingRulePairsModel {
  @Field(() => String) rule!: string;
  @Field(() => Float) pairs!: number;
}

/** One level of a comparison as the run's model learned it. */
@ObjectType('ComparisonLevelWeight')
export class ComparisonLevelWeightModel {
  @Field(() => String) level!: string;
  /** P(level | same person), estimated by EM on the run's candidate pairs. */
  @Field(() => Float) m!: number;
  /** P(level | different persons), counted on random pairs of the run's records. */
  @Field(() => Float) u!: number;
  /** log2(m / u): what the level adds to a pair's match weight. */
  @Field(() => Float) weight!: number;
}

/** A comparison's levels and their learned weights (the run's "match weights" chart). */
@ObjectType('ComparisonWeights')
export class ComparisonWeightsModel {
  @Field(() => String) comparison!: string;
  @Field(() => [ComparisonLevelWeightModel]) levels!: ComparisonLevelWeightModel[];
}

/** A bin of the distribution of match weights over every compared pair. */
@ObjectType('WeightBin')
export class WeightBinModel {
  @Field(() => Float) lower!: number;
  @Field(() => Float) upper!: number;
  @Field(() => Int) pairs!: number;
}

/** A run of record linkage over every dataset with identity fields. */
@ObjectType('LinkageRun')
export class LinkageRunModel {
  @Field(() => ID) id!: string;
  @Field(() => LinkageStatus) status!: LinkageStatus;
  /** Units of work done over units planned, 0 to 1. */
  @Field(() => Float) progress!: number;
  @Field(() => GraphQLISODateTime, { nullable: true }) startedAt!: Date | null;
  @Field(() => GraphQLISODateTime, { nullable: true }) finishedAt!: Date | null;
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field(() => LinkageStatsModel, { nullable: true }) stats!: LinkageStatsModel | null;
  /** 'MANUAL' (startLinkage) or 'INGESTION' (records were ingested). */
  @Field(() => String) trigger!: LinkageTrigger;
  @Field(() => GraphQLISODateTime) createdAt!: Date;
  /** The match weight (log2 odds) at or above which a compared pair is a link. */
  @Field(() => Float, { nullable: true }) threshold!: number | null;
  /** The threshold as a match probability: 2^t / (1 + 2^t). */
  @Field(() => Float, { nullable: true }) thresholdProbability!: number | null;
  /** The model the run learned from its own records: every comparison's levels, m, u and weight. */
  @Field(() => [ComparisonWeightsModel]) comparisons!: ComparisonWeightsModel[];
  /** Compared pairs by match weight, in unit-wide bins (empty until the run succeeds). */
  @Field(() => [WeightBinModel]) weightHistogram!: WeightBinModel[];
}
