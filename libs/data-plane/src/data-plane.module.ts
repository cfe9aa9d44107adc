import { Module } from '@nestjs/common';
import { AgreementsModule } from '@broker/agreements';
import { RegistryModule } from '@broker/registry';
import { DataExportController } from './data-export.controller';
import { DataPlaneController } from './data-plane.controller';
import { DataExportService } from './data-export.service';
import { DataPlaneRecorder } from './data-plane-recorder';
import { DataPlaneService } from './data-plane.service';
import { PolicyCache } from './policy-cache.service';
import { SubjectAccessResolver } from './subject-access.resolver';
import { SubjectAccessService } from './subject-access.service';

/** The policy-mediated data plane at `/data/graphql`, and its exports at `/data/export`. */
@Module({
  imports: [RegistryModule, AgreementsModule],
  controllers: [DataPlaneController, DataExportController],
  providers: [
    DataPlaneService,
    DataPlaneRecorder,
    DataExportService,
    PolicyCache,
    SubjectAccessService,
    SubjectAccessResolver,
  ],
})
export class DataPlaneModule {}
