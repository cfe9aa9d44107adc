import { Module } from '@nestjs/common';
import { RegistryModule } from '@broker/registry';
import { AgreementResolver, ApprovalResolver } from './agreement.resolver';
import { AgreementService } from './agreement.service';

/** Agreements: versions, approvals, lifecycle. */
@Module({
  imports: [RegistryModule],
  providers: [AgreementService, AgreementResolver, ApprovalResolver],
  exports: [AgreementService],
})
export class AgreementsModule {}
