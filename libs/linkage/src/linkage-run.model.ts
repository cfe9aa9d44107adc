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
  /** Compared pairs by match weight, in unit-wide bins (empty until the run succeeds). */
  @Field(() => [WeightBinModel]) weightHistogram!: WeightBinModel[];
}
