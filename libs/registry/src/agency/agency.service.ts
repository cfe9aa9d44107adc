import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { badInput, conflict, Database, isUuid } from '@broker/core';
import { AuditAction, AuditService, auditActor } from '@broker/audit';
import { type RequestContext, authorizeType } from '@broker/auth';
import { AgencyEntity } from './agency.entity';
import type { CreateAgencyInput } from './create-agency.input';
import { isUniqueViolation } from '../registry-errors';

/** Agencies: created by the operator, listed to every signed-in user. */
@Injectable()
export class AgencyService {
  constructor(
    private readonly db: Database,
    @InjectRepository(AgencyEntity) private readonly agencies: Repository<AgencyEntity>,
    private readonly audit: AuditService,
  ) {}

  /** Every agency, by name. */
  list(_ctx: RequestContext): Promise<AgencyEntity[]> {
    return this.agencies.find({ order: { name: 'ASC' } });
  }

  /** One agency by id, or null. */
  async findById(id: string): Promise<AgencyEntity | null> {
    if (!isUuid(id)) return null;
    return this.agencies.findOneBy({ id });
  }

  /** Creates an agency; names are unique regardless of case. */
  async create(ctx: RequestContext, input: CreateAgencyInput): Promise<AgencyEntity> {
    authorizeType(ctx.principal, 'create', 'Agency');
    const name = cleanText(input.name, 'name', 200);
    const kind = input.kind == null ? null : cleanText(input.kind, 'kind', 100);
    try {
      return await this.db.transaction(
        async ({ manager }) => {
          const agency = await manager.save(manager.create(AgencyEntity, { name, kind }));
          await this.audit.append(
            { ...auditActor(ctx), action: AuditAction.AGENCY_CREATED, decision: 'ALLOW', reason: name },
            manager,
          );
          return agency;
        },
        { carrier: ctx },
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw conflict(`An agency named "${name}" exists already`);
      throw error;
    }
  }
}

/** Whether a string is a UUID; ids that are not answer NOT_FOUND without a query. */
export { isUuid };

/** Trims a free-text input and checks its length and characters. */
export function cleanText(value: string, field: string, maxLength: number): string {
  const text = value.trim();
  if (!text) throw badInput(`${field} must not be empty`);
  if (text.length > maxLength) throw badInput(`${field} must be at most ${maxLength} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    throw badInput(`${field} must not contain control characters`);
  }
  return text;
}
