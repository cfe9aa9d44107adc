import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AgencyEntity } from './agency/agency.entity';
import { AgencyResolver } from './agency/agency.resolver';
import { AgencyService } from './agency/agency.service';
import { ConsentResolver } from './consent/consent.resolver';
import { ConsentService } from './consent/consent.service';
import { DatasetEntity, DatasetFieldEntity } from './dataset/dataset.entity';
import { DatasetResolver } from './dataset/dataset.resolver';
import { DatasetService } from './dataset/dataset.service';
import { HashLookupIndex } from './dataset/hash-lookup';
import { IngestController } from './ingest/ingest.controller';
import { IngestService } from './ingest/ingest.service';
import { PurposeEntity } from './purpose/purpose.entity';
import { PurposeResolver } from './purpose/purpose.resolver';
import { PurposeService } from './purpose/purpose.service';
import { RetentionPreviewResolver } from './retention/retention-preview.resolver';
import { RetentionPreviewService } from './retention/retention-preview.service';
import { RetentionService } from './retention/retention.service';
import { UserEntity } from './user/user.entity';
import { UserResolver } from './user/user.resolver';
import { UserService } from './user/user.service';

/** Agencies, users, purposes, datasets, ingestion, and retention's service and preview. */
@Module({
  imports: [
    TypeOrmModule.forFeature([AgencyEntity, UserEntity, PurposeEntity, DatasetEntity, DatasetFieldEntity]),
  ],
  controllers: [IngestController],
  providers: [
    AgencyService,
    AgencyResolver,
    UserService,
    UserResolver,
    PurposeService,
    PurposeResolver,
    DatasetService,
    DatasetResolver,
    HashLookupIndex,
    IngestService,
    ConsentService,
    ConsentResolver,
    RetentionService,
    RetentionPreviewService,
    RetentionPreviewResolver,
  ],
  exports: [
    AgencyService,
    UserService,
    PurposeService,
    DatasetService,
    HashLookupIndex,
    IngestService,
    RetentionService,
    RetentionPreviewService,
  ],
})
export class RegistryModule {}
