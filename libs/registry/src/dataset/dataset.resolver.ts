import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { GraphQLJSONObject } from 'graphql-scalars';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { badInput, isUuid, notFound } from '@broker/core';
import { AgencyModel } from '../agency/agency.model';
import { AgencyService } from '../agency/agency.service';
import { IngestService } from '../ingest/ingest.service';
import { objectSource } from '../ingest/record-sources';
import { DatasetModel, IngestReportModel, RegisterDatasetInput, UpdateDatasetInput } from './dataset.model';
import { DatasetService } from './dataset.service';

const EVERYONE = [Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR];

@Resolver(() => DatasetModel)
export class DatasetResolver {
  constructor(
    private readonly datasetService: DatasetService,
    private readonly ingestion: IngestService,
    private readonly agencies: AgencyService,
  ) {}

  @Allow(...EVERYONE)
  @Query(() => [DatasetModel], {
    description: 'The catalog: metadata of every dataset, to every signed-in user.',
  })
  datasets(@Ctx() ctx: RequestContext) {
    return this.datasetService.list(ctx);
  }

  @Allow(...EVERYONE)
  @Query(() => DatasetModel, {
    nullable: true,
    description: 'One dataset of the catalog; NOT_FOUND for an unknown id.',
  })
  async dataset(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The dataset id.' }) id: string,
  ) {
    // An unknown id is NOT_FOUND and a malformed one BAD_USER_INPUT, as for every other object.
    if (!isUuid(id)) throw badInput('id is not a valid id');
    const found = await this.datasetService.get(ctx, id);
    if (!found) throw notFound('Dataset');
    return found;
  }

  @Allow(Role.STEWARD)
  @Mutation(() => DatasetModel, {
    description:
      "Registers a dataset and creates its record table (STEWARD; the provider is the steward's agency).",
  })
  registerDataset(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The dataset.' }) input: RegisterDatasetInput,
  ) {
    return this.datasetService.register(ctx, input);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => DatasetModel, {
    description: 'STEWARD of the provider. Fields, key and slug never change.',
  })
  updateDataset(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The dataset.' }) id: string,
    @Args('input', { description: 'The metadata to change; fields left out keep their value.' })
    input: UpdateDatasetInput,
  ) {
    return this.datasetService.update(ctx, id, input);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => IngestReportModel, {
    description:
      'Writes a batch of records, all or nothing (STEWARD of the provider); see also POST /api/datasets/{id}/records.',
  })
  ingestRecords(
    @Ctx() ctx: RequestContext,
    @Args('datasetId', { type: () => ID, description: 'The dataset.' }) datasetId: string,
    @Args('records', { type: () => [GraphQLJSONObject], description: 'The records: field name to value.' })
    records: Record<string, unknown>[],
  ) {
    return this.ingestion.ingest(ctx, datasetId, () => objectSource(records));
  }

  @ResolveField(() => AgencyModel, { description: 'The agency that provides it.' })
  provider(@Parent() dataset: DatasetModel) {
    return this.agencies.findById(dataset.providerAgencyId);
  }
}
