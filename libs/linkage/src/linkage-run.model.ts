import { Field, Float, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';

/** Where a linkage run is. */
export enum LinkageStatus {
  QUEUED = 'QUEUED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}

registerEnumType(LinkageStatus, {
  name: 'LinkageStatus',
  description: 'Where a linkage run is.',
  valuesMap: {
    QUEUED: { description: 'Waiting for a worker to start it.' },
    RUNNING: { description: 'A worker is linking; progress says how far it is.' },
    SUCCEEDED: {
      description: 'Finished: its result is now in force (personKey, linked counts and persons follow it).',
    },
    FAILED: { description: 'Stopped with an error; the previous result stays in force.' },
  },
});

/**
 * What started a run: an operator's `startLinkage`, an ingestion, or retention destroying records
 * the run in force had assigned to persons.
 */
export type LinkageTrigger = 'MANUAL' | 'INGESTION' | 'RETENTION';

@ObjectType('LinkageStats', {
  description: 'What a linkage run did: counts only, never a record or an identifier.',
})
export class LinkageStatsModel {
  @Field(() => Int, { description: 'Records with identity fields that took part.' }) records!: number;
  @Field(() => Int, {
    description: 'Record pairs compared: those that blocking (records sharing a key) brought together.',
  })
  candidatePairs!: number;
  @Field(() => Int, { description: 'Compared pairs whose match weight reached the threshold.' })
  links!: number;
  @Field(() => Int, {
    description: 'Distinct persons found: clusters of linked records, and each record linked to none.',
  })
  persons!: number;
  @Field(() => [UnparsedValuesModel], {
    description:
      'Per identity role, values present but not understood (an SSN that is no SSN): counted, never ' +
      'silently dropped; the comparisons treat them as missing.',
  })
  unparsed!: UnparsedValuesModel[];
  @Field(() => [BlockingRulePairsModel], {
    description: 'Per blocking rule, the pairs it found first; their sum is candidatePairs.',
  })
  pairsByRule!: BlockingRulePairsModel[];
}

/** Values of one identity role that were present but not understood (an SSN that is no SSN). */
@ObjectType('UnparsedValues', {
  description: 'Values of one identity role that were present but not understood (an SSN that is no SSN).',
})
export class UnparsedValuesModel {
  @Field(() => String, { description: 'The identity role, as IdentityRole spells it (SSN, ZIP, ...).' })
  role!: string;
  @Field(() => Int, { description: 'How many such values the run met.' }) values!: number;
}

/** Pairs a blocking rule produced first (a pair is compared under the first rule that finds it). */
@ObjectType('BlockingRulePairs', {
  description:
    'The pairs one blocking rule found first. A rule brings together records that share a key (e.g. date ' +
    'of birth and given-name group); a pair is compared once, under the first rule that finds it.',
})
export class BlockingRulePairsModel {
  @Field(() => String, { description: "The rule's name, e.g. `dob+zip` (docs/linkage.md lists them)." })
  rule!: string;
  @Field(() => Float, { description: 'How many pairs it found first.' }) pairs!: number;
}

/** One level of a comparison as the run's model learned it. */
@ObjectType('ComparisonLevelWeight', {
  description: 'One level of a comparison (how well two values agree) and its weight, as the run learned it.',
})
export class ComparisonLevelWeightModel {
  @Field(() => String, { description: "The level's name: 'exact', 'one_typo', 'different', ..." })
  level!: string;
  @Field(() => Float, {
    description:
      "m: the probability of this level when the two records are one person, estimated by EM on the run's pairs.",
  })
  m!: number;
  @Field(() => Float, {
    description:
      "u: the probability of this level when they are different persons, counted on random pairs of the run's records.",
  })
  u!: number;
  @Field(() => Float, {
    description: "log2(m / u): what the level adds to a pair's match weight (negative: evidence against).",
  })
  weight!: number;
}

/** A comparison's levels and their learned weights (the run's "match weights" chart). */
@ObjectType('ComparisonWeights', {
  description: "A comparison's levels and their learned weights (the run's match weights chart).",
})
export class ComparisonWeightsModel {
  @Field(() => String, { description: 'What is compared: first_name, date_of_birth, ssn, zip, ...' })
  comparison!: string;
  @Field(() => [ComparisonLevelWeightModel], { description: 'Its levels, from full agreement to none.' })
  levels!: ComparisonLevelWeightModel[];
}

/** A bin of the distribution of match weights over every compared pair. */
@ObjectType('WeightBin', {
  description: 'A bin of the distribution of match weights over every compared pair.',
})
export class WeightBinModel {
  @Field(() => Float, {
    description:
      'The lower bound of the bin: a pair falls in the bin of its weight rounded down (the outermost bins also hold weights beyond them).',
  })
  lower!: number;
  @Field(() => Float, { description: 'The upper bound of the bin: lower + 1.' }) upper!: number;
  @Field(() => Int, { description: 'Compared pairs whose weight falls in the bin.' }) pairs!: number;
}

/** A run of record linkage over every dataset with identity fields. */
@ObjectType('LinkageRun', {
  description:
    'A run of record linkage over every dataset with identity fields: it finds which records belong ' +
    "to the same person, learning its model from the run's own records. The operator starts runs; " +
    'ingestion also starts one. Records are never shown here.',
})
export class LinkageRunModel {
  @Field(() => ID, { description: 'The run id.' }) id!: string;
  @Field(() => LinkageStatus, { description: 'Where the run is.' }) status!: LinkageStatus;
  @Field(() => Float, { description: 'Units of work done over units planned, 0 to 1.' }) progress!: number;
  @Field(() => Int, {
    description:
      'Times the run went back to its estimate phase because retention destroyed records its model had ' +
      'learned from: it learned the model again, and scored and clustered again, from the records left ' +
      '(its progress goes back with it).',
  })
  restarts!: number;
  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'When a worker started it; null while queued.',
  })
  startedAt!: Date | null;
  @Field(() => DateTimeScalar, {
    nullable: true,
    description: 'When it succeeded or failed; null until then.',
  })
  finishedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'Why it failed; null unless it did.' })
  error!: string | null;
  @Field(() => LinkageStatsModel, {
    nullable: true,
    description: 'What it did, in counts; null until it succeeds.',
  })
  stats!: LinkageStatsModel | null;
  @Field(() => String, {
    description:
      "What started it: 'MANUAL' (startLinkage), 'INGESTION' (records were ingested) or 'RETENTION' " +
      '(retention destroyed records that the run in force had assigned to persons).',
  })
  trigger!: LinkageTrigger;
  @Field(() => DateTimeScalar, { description: 'When it was enqueued.' }) createdAt!: Date;
  @Field(() => Float, {
    nullable: true,
    description:
      'The match weight (log2 odds) at or above which a compared pair is a link; null until the run is planned.',
  })
  threshold!: number | null;
  @Field(() => Float, {
    nullable: true,
    description: 'The threshold as a probability that two records are one person: 2^t / (1 + 2^t).',
  })
  thresholdProbability!: number | null;
  @Field(() => [ComparisonWeightsModel], {
    description:
      "The model the run learned from its own records: every comparison's levels, m, u and weight.",
  })
  comparisons!: ComparisonWeightsModel[];
  @Field(() => [WeightBinModel], {
    description: 'Compared pairs by match weight, in bins one unit wide; empty until the run succeeds.',
  })
  weightHistogram!: WeightBinModel[];
}
