import {
  Args,
  GraphQLISODateTime,
  ID,
  Int,
  Mutation,
  Parent,
  Query,
  ResolveField,
  Resolver,
} from '@nestjs/graphql';
import { Allow, Ctx, type RequestContext, Role } from '@broker/auth';
import { AgencyModel, AgencyService, UserModel, UserService } from '@broker/registry';
import { AgreementStatus } from './agreement-status';
import { AgreementInput, AgreementModel, ApprovalModel, DeclineModel } from './agreement.model';
import { AgreementService } from './agreement.service';

const EVERYONE = [Role.OPERATOR, Role.STEWARD, Role.ANALYST, Role.AUDITOR];

@Resolver(() => AgreementModel)
export class AgreementResolver {
  constructor(
    private readonly agreementService: AgreementService,
    private readonly agencies: AgencyService,
  ) {}

  @Allow(...EVERYONE)
  @Query(() => [AgreementModel], { description: 'Parties, OPERATOR and AUDITOR only.' })
  agreements(
    @Ctx() ctx: RequestContext,
    @Args('status', { type: () => AgreementStatus, nullable: true }) status?: AgreementStatus | null,
  ) {
    return this.agreementService.list(ctx, status);
  }

  @Allow(...EVERYONE)
  @Query(() => AgreementModel, { nullable: true })
  agreement(@Ctx() ctx: RequestContext, @Args('id', { type: () => ID }) id: string) {
    return this.agreementService.get(ctx, id);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel)
  proposeAgreement(@Ctx() ctx: RequestContext, @Args('input') input: AgreementInput) {
    return this.agreementService.propose(ctx, input);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel)
  amendAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID }) id: string,
    @Args('input') input: AgreementInput,
  ) {
    return this.agreementService.amend(ctx, id, input);
  }

  @Allow(Role.STEWARD, Role.AUDITOR)
  @Mutation(() => AgreementModel, {
    description: 'STEWARD of either party; AUDITOR where oversight is required.',
  })
  approveAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID }) id: string,
    @Args('version', { type: () => Int }) version: number,
  ) {
    return this.agreementService.approve(ctx, id, version);
  }

  @Allow(Role.AUDITOR)
  @Mutation(() => AgreementModel, { description: 'AUDITOR, where oversight is required.' })
  declineAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID }) id: string,
    @Args('version', { type: () => Int }) version: number,
    @Args('reason') reason: string,
  ) {
    return this.agreementService.decline(ctx, id, version, reason);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel, { description: 'STEWARD of the recipient.' })
  attestDestruction(
    @Ctx() ctx: RequestContext,
    @Args('agreementId', { type: () => ID }) agreementId: string,
    @Args('through', { type: () => GraphQLISODateTime }) through: Date,
  ) {
    return this.agreementService.attestDestruction(ctx, agreementId, through);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel)
  revokeAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID }) id: string,
    @Args('reason') reason: string,
  ) {
    return this.agreementService.revoke(ctx, id, reason);
  }

  @ResolveField(() => AgencyModel)
  provider(@Parent() agreement: AgreementModel) {
    return this.agencies.findById(agreement.providerAgencyId);
  }

  @ResolveField(() => AgencyModel)
  recipient(@Parent() agreement: AgreementModel) {
    return this.agencies.findById(agreement.recipientAgencyId);
  }
}

@Resolver(() => ApprovalModel)
export class ApprovalResolver {
  constructor(
    private readonly agencies: AgencyService,
    private readonly users: UserService,
  ) {}

  @ResolveField(() => AgencyModel)
  agency(@Parent() approval: ApprovalModel) {
    return this.agencies.findById(approval.agencyId);
  }

  @ResolveField(() => UserModel)
  user(@Parent() approval: ApprovalModel) {
    return this.users.findById(approval.userId);
  }
}

@Resolver(() => DeclineModel)
export class DeclineResolver {
  constructor(
    private readonly agencies: AgencyService,
    private readonly users: UserService,
  ) {}

  @ResolveField(() => AgencyModel)
  agency(@Parent() decline: DeclineModel) {
    return this.agencies.findById(decline.agencyId);
  }

  @ResolveField(() => UserModel)
  user(@Parent() decline: DeclineModel) {
    return this.users.findById(decline.userId);
  }
}
