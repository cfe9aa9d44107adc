import { Args, ID, Int, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { DateTimeScalar } from '@broker/core';
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
  @Query(() => [AgreementModel], {
    description:
      "Agreements the caller may read: a STEWARD's or ANALYST's those its agency is party to; the " +
      'OPERATOR and AUDITORs every one. Oldest first.',
  })
  agreements(
    @Ctx() ctx: RequestContext,
    @Args('status', {
      type: () => AgreementStatus,
      nullable: true,
      description: 'Only agreements with this status now; all when omitted.',
    })
    status?: AgreementStatus | null,
  ) {
    return this.agreementService.list(ctx, status);
  }

  @Allow(...EVERYONE)
  @Query(() => AgreementModel, {
    nullable: true,
    description:
      'One agreement, for a STEWARD or ANALYST of a party, the OPERATOR or an AUDITOR. NOT_FOUND when it ' +
      'does not exist or the caller may not read it: the same answer for both.',
  })
  agreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The agreement id.' }) id: string,
  ) {
    return this.agreementService.get(ctx, id);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel, {
    description:
      "A STEWARD of either party proposes an agreement: version 1, approved by the proposer's side. It " +
      'comes into force when the other side (and an AUDITOR where oversight is required) approves it. ' +
      'Audited.',
  })
  proposeAgreement(
    @Ctx() ctx: RequestContext,
    @Args('input', { description: 'The terms of version 1.' }) input: AgreementInput,
  ) {
    return this.agreementService.propose(ctx, input);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel, {
    description:
      "A STEWARD of either party writes the next version, approved by the amender's side only. The " +
      'version in force keeps governing until the new one has every required approval. The parties stay ' +
      'the same; a revoked agreement cannot be amended. Audited.',
  })
  amendAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The agreement to amend.' }) id: string,
    @Args('input', { description: 'The complete terms of the new version (not a difference).' })
    input: AgreementInput,
  ) {
    return this.agreementService.amend(ctx, id, input);
  }

  @Allow(Role.STEWARD, Role.AUDITOR)
  @Mutation(() => AgreementModel, {
    description:
      "Approves a version for the caller's side: a STEWARD of either party, or an AUDITOR where the " +
      'version needs oversight (an AUDITOR approving one that needs none is refused). The version comes ' +
      'into force once it has every required approval. Audited.',
  })
  approveAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The agreement.' }) id: string,
    @Args('version', {
      type: () => Int,
      description:
        'The version approved: it must be the current (latest) one, else CONFLICT, so nobody approves terms they did not read.',
    })
    version: number,
  ) {
    return this.agreementService.approve(ctx, id, version);
  }

  @Allow(Role.AUDITOR)
  @Mutation(() => AgreementModel, {
    description:
      'An AUDITOR declines a version that needs oversight: that version never comes into force; the ' +
      'parties may amend. Not once oversight approved it. The same decline again (same reason) changes ' +
      'nothing; another reason for a version declined already is a CONFLICT. Audited.',
  })
  declineAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The agreement.' }) id: string,
    @Args('version', {
      type: () => Int,
      description: 'The version declined: it must be the current (latest) one, else CONFLICT.',
    })
    version: number,
    @Args('reason', { description: 'Why, for the parties and the record; required.' }) reason: string,
  ) {
    return this.agreementService.decline(ctx, id, version, reason);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel, {
    description:
      'A STEWARD of the recipient attests that every row released under the agreement up to `through` ' +
      'has been destroyed, as its retentionDays require; allowed after revocation or expiry, refused ' +
      '(CONFLICT) for an agreement that was never in force. Audited; the public register then stops ' +
      'listing those releases as unattested.',
  })
  attestDestruction(
    @Ctx() ctx: RequestContext,
    @Args('agreementId', { type: () => ID, description: 'The agreement.' }) agreementId: string,
    @Args('through', {
      type: () => DateTimeScalar,
      description: 'Up to when: never in the future, never earlier than the last attestation.',
    })
    through: Date,
  ) {
    return this.agreementService.attestDestruction(ctx, agreementId, through);
  }

  @Allow(Role.STEWARD)
  @Mutation(() => AgreementModel, {
    description:
      'A STEWARD of either party revokes the agreement: final, and access stops at once on every broker ' +
      'instance. A party that wants access to stop while it renegotiates revokes. Audited.',
  })
  revokeAgreement(
    @Ctx() ctx: RequestContext,
    @Args('id', { type: () => ID, description: 'The agreement.' }) id: string,
    @Args('reason', { description: 'Why, for the other party and the record.' }) reason: string,
  ) {
    return this.agreementService.revoke(ctx, id, reason);
  }

  @ResolveField(() => AgencyModel, { description: 'The agency whose datasets are shared.' })
  provider(@Parent() agreement: AgreementModel) {
    return this.agencies.findById(agreement.providerAgencyId);
  }

  @ResolveField(() => AgencyModel, { description: 'The agency that receives the data.' })
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

  @ResolveField(() => AgencyModel, {
    description: 'The agency that approved: a party, or the oversight agency.',
  })
  agency(@Parent() approval: ApprovalModel) {
    return this.agencies.findById(approval.agencyId);
  }

  @ResolveField(() => UserModel, { description: 'The user who approved on its behalf.' })
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

  @ResolveField(() => AgencyModel, { description: 'The oversight agency that declined.' })
  agency(@Parent() decline: DeclineModel) {
    return this.agencies.findById(decline.agencyId);
  }

  @ResolveField(() => UserModel, { description: 'The AUDITOR who declined.' })
  user(@Parent() decline: DeclineModel) {
    return this.users.findById(decline.userId);
  }
}
