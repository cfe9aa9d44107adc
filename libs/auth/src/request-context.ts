import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { GqlExecutionContext } from '@nestjs/graphql';
import type { FastifyRequest } from 'fastify';
import type { TransactionCarrier } from '@broker/core';
import type { Role } from './role.enum';

/** The authenticated caller, resolved from its API key once per request. */
export interface Principal {
  userId: string;
  email: string;
  role: Role;
  /** Null for OPERATOR and for an AUDITOR not attached to an agency. */
  agencyId: string | null;
  apiKeyId: string;
  /**
   * The key is an invitation the operator created: it may call only operations marked
   * `@AllowInvitation()` (`me`, `rotateApiKey`) until its owner rotates it.
   */
  invitation?: boolean;
}

/**
 * What every service method receives first: who calls, and the request it belongs to.
 * Services authorise against it and never trust ids from the input alone.
 */
/** Who asks, and the request's id; it carries the request's transaction while one is open. */
export interface RequestContext extends TransactionCarrier {
  principal: Principal;
  requestId: string;
  /**
   * The principal was remembered, not read from the database for this request: only the data plane
   * accepts such a context, and checks the key before it reads or records anything under it.
   */
  unverified?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    /** The principal is the one remembered for the key, not yet checked (see AuthService.remembered). */
    principalUnverified?: boolean;
  }
}

/** The fastify request behind a GraphQL or HTTP execution context. */
export function requestOf(context: ExecutionContext): FastifyRequest {
  if (context.getType<string>() === 'graphql') {
    const gql = GqlExecutionContext.create(context).getContext<{ req: FastifyRequest }>();
    return gql.req;
  }
  return context.switchToHttp().getRequest<FastifyRequest>();
}

/** Builds the {@link RequestContext} of an authenticated request. */
export function contextOf(request: FastifyRequest): RequestContext {
  if (!request.principal) throw new Error('request reached a handler without authentication');
  return {
    principal: request.principal,
    requestId: String(request.id),
    ...(request.principalUnverified ? { unverified: true } : {}),
  };
}

/** Injects the caller's {@link RequestContext} into a resolver or controller method. */
export const Ctx = createParamDecorator((_data: unknown, context: ExecutionContext) =>
  contextOf(requestOf(context)),
);
