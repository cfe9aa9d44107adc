import { SetMetadata } from '@nestjs/common';
import { ALLOW_KEY } from '@broker/core';
import type { Role } from './role.enum';

/**
 * Declares which roles may call an operation or route. Every resolver method and controller route
 * carries either `@Allow(...)` or `@Public()`; a test fails when one carries neither. Finer rules
 * (own agency only) are enforced by the service.
 *
 * @example @Allow(Role.OPERATOR) @Mutation(() => Agency) createAgency(...)
 */
export const Allow = (...roles: Role[]) => SetMetadata(ALLOW_KEY, roles);

export const INVITATION_KEY = 'broker:invitation';

/**
 * Lets an invitation key (one the operator created, not yet rotated by its owner) call the
 * operation: only `me` and `rotateApiKey` carry it.
 */
export const AllowInvitation = () => SetMetadata(INVITATION_KEY, true);
