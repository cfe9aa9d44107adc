import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ALLOW_KEY, BrokerError, ErrorCode, PUBLIC_KEY } from '@broker/core';
import { requestOf } from './request-context';
import type { Role } from './role.enum';
import { INVITATION_KEY } from './allow.decorator';

/**
 * Deny by default: an operation runs only when it declares `@Public()` or `@Allow(roles)` and the
 * caller's role is among them. Authentication itself happened in the request hook.
 */
@Injectable()
export class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(ALLOW_KEY, targets);
    if (!roles) throw new BrokerError(ErrorCode.FORBIDDEN, 'Not allowed', { reason: 'ROLE' });
    const principal = requestOf(context).principal;
    if (!principal) throw new BrokerError(ErrorCode.UNAUTHENTICATED, 'A valid API key is required');
    if (!roles.includes(principal.role))
      throw new BrokerError(ErrorCode.FORBIDDEN, 'Not allowed for your role', { reason: 'ROLE' });
    if (principal.invitation && !this.reflector.getAllAndOverride<boolean>(INVITATION_KEY, targets)) {
      // An operator who used an invitation would have to rotate it, locking the owner out, visibly.
      throw new BrokerError(
        ErrorCode.FORBIDDEN,
        'This key is an invitation: rotate it with rotateApiKey before using it',
        { reason: 'ROLE' },
      );
    }
    return true;
  }
}
