import { Module } from '@nestjs/common';
import { RegistryModule } from '@broker/registry';
import { AgreementPreviewResolver } from './agreement-preview.resolver';
import { AgreementPreviewService } from './agreement-preview.service';
import { AgreementResolver, ApprovalResolver, DeclineResolver } from './agreement.resolver';
import { AgreementService } from './agreement.service';
import { RecordIndexKeeper } from './record-index-keeper';
import { RegisterController } from './register/register.controller';
import { RegisterService } from './register/register.service';

/** Agreements: versions, approvals, lifecycle, and previews of what a recipient would see. */
@Module({
  imports: [RegistryModule],
  providers: [
    AgreementService,
    RecordIndexKeeper,
    AgreementResolver,
    ApprovalResolver,
    DeclineResolver,
    AgreementPreviewService,
    AgreementPreviewResolver,
    RegisterService,
  ],
  controllers: [RegisterController],
  exports: [AgreementService, RecordIndexKeeper, RegisterService],
})
export class AgreementsModule {}
