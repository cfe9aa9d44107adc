import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { AuditAction, AuditService, auditActor } from '@broker/audit';
import { type RequestContext, authorizeType } from '@broker/auth';
import { badInput, conflict, Database } from '@broker/core';
import { cleanText } from '../agency/agency.service';
import { isUniqueViolation } from '../registry-errors';
import { PurposeEntity } from './purpose.entity';
import type { DefinePurposeInput } from './purpose.model';

/** The purpose codes a purpose may carry; they become GraphQL enum values of the data plane. */
export const PURPOSE_CODE = /^[A-Z][A-Z0-9_]{2,63}$/;

/** Purposes: defined by the operator, listed to everyone. */
@Injectable()
export class PurposeService {
  constructor(
    private readonly db: Database,
    @InjectRepository(PurposeEntity) private readonly purposes: Repository<PurposeEntity>,
    private readonly audit: AuditService,
  ) {}

  /** Every purpose, by code. */
  list(_ctx: RequestContext): Promise<PurposeEntity[]> {
    return this.purposes.find({ order: { code: 'ASC' } });
  }

  /** The codes of every defined purpose. */
  async codes(): Promise<Set<string>> {
    return new Set((await this.purposes.find({ select: { code: true } })).map((p) => p.code));
  }

  /** Defines a purpose; its code is immutable and unique. */
  async define(ctx: RequestContext, input: DefinePurposeInput): Promise<PurposeEntity> {
    authorizeType(ctx.principal, 'create', 'Purpose');
    if (!PURPOSE_CODE.test(input.code)) {
      throw badInput('code must match ^[A-Z][A-Z0-9_]{2,63}$ (for example RECIDIVISM_EVALUATION)');
    }
    const description = cleanText(input.description, 'description', 2000);
    try {
      return await this.db.transaction(
        async ({ manager }) => {
          const purpose = await manager.save(
            manager.create(PurposeEntity, { code: input.code, description }),
          );
          await this.audit.append(
            {
              ...auditActor(ctx),
              action: AuditAction.PURPOSE_DEFINED,
              decision: 'ALLOW',
              purpose: input.code,
            },
            manager,
          );
          return purpose;
        },
        { carrier: ctx },
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`Purpose ${input.code} is defined already`);
      throw error;
    }
  }
}
