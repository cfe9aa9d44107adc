import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AuditAction, AuditService, auditActor } from '@broker/audit';
import { AuthService, type RequestContext, Role } from '@broker/auth';
import { badInput, conflict, forbidden, notFound } from '@broker/core';
import { AgencyService, cleanText, isUuid } from '../agency/agency.service';
import { isUniqueViolation } from '../registry-errors';
import type { CreateUserInput } from './create-user.input';
import { UserEntity } from './user.entity';

const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

/** Users: the operator creates anyone; a steward creates stewards and analysts of its own agency. */
@Injectable()
export class UserService {
  constructor(
    @InjectRepository(UserEntity) private readonly users: Repository<UserEntity>,
    private readonly dataSource: DataSource,
    private readonly agencies: AgencyService,
    private readonly auth: AuthService,
    private readonly audit: AuditService,
  ) {}

  /** The caller's own user. */
  async me(ctx: RequestContext): Promise<UserEntity> {
    const user = await this.users.findOneBy({ id: ctx.principal.userId });
    if (!user) throw notFound('User');
    return user;
  }

  /** One user by id, or null. */
  async findById(id: string): Promise<UserEntity | null> {
    return isUuid(id) ? this.users.findOneBy({ id }) : null;
  }

  /** Creates a user and its first API key, returned once. */
  async create(ctx: RequestContext, input: CreateUserInput): Promise<{ user: UserEntity; apiKey: string }> {
    const caller = ctx.principal;
    let agencyId = input.agencyId ?? null;
    if (caller.role === Role.STEWARD) {
      if (input.role !== Role.STEWARD && input.role !== Role.ANALYST) {
        throw forbidden('Stewards create stewards and analysts only');
      }
      agencyId ??= caller.agencyId;
      if (agencyId !== caller.agencyId) throw forbidden('Stewards create users of their own agency only');
    } else if (caller.role !== Role.OPERATOR) {
      throw forbidden();
    }
    if (input.role === Role.OPERATOR && agencyId)
      throw badInput('An OPERATOR belongs to no agency: omit agencyId');
    if ((input.role === Role.STEWARD || input.role === Role.ANALYST) && !agencyId) {
      throw badInput(`A ${input.role} needs an agencyId`);
    }
    if (agencyId && (!isUuid(agencyId) || !(await this.agencies.findById(agencyId))))
      throw notFound('Agency');

    const email = input.email.trim();
    if (email.length > 254 || !EMAIL.test(email)) throw badInput('email is not a valid e-mail address');
    const displayName = input.displayName == null ? null : cleanText(input.displayName, 'displayName', 200);

    try {
      return await this.dataSource.transaction(async (manager) => {
        const user = await manager.save(
          manager.create(UserEntity, { agencyId, email, displayName, role: input.role }),
        );
        const apiKey = await this.auth.issueKey(manager, user.id);
        await this.audit.append(
          {
            ...auditActor(ctx),
            action: AuditAction.USER_CREATED,
            decision: 'ALLOW',
            reason: `${input.role} ${user.id}${agencyId ? ` of agency ${agencyId}` : ''}`,
          },
          manager,
        );
        return { user, apiKey };
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict('A user with this e-mail exists already');
      throw error;
    }
  }
}
