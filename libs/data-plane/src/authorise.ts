import { AuditAction } from '@broker/audit';
import { type Principal, Role } from '@broker/auth';
import {
  actionOf,
  checkAggregateFilter,
  checkBounds,
  checkNames,
  chooseAgreement,
  PolicyError,
  readableGrants,
  refusal,
  refusalOf,
  whereFieldNames,
} from '@broker/policy';
import { cursorBinding, openCursor } from './cursor';
import type { DataPlaneRefusal, DataPlaneRequest, Plan, RefusalAudit } from './plan';
import type { CallerPolicy } from './policy-cache.service';
import type { Analysis } from './request-analysis';

const MAX_QUERY_LENGTH = 100_000;

/**
 * Checks that need no policy: the caller's role and the request's shape. Returns null when the
 * request may go on, refusals (audited) for a caller who reads no records, or a message (400).
 */
export function precheck(
  principal: Principal,
  request: DataPlaneRequest | null | undefined,
): { refusals: DataPlaneRefusal[]; message?: never } | { message: string; refusals?: never } | null {
  if (principal.role !== Role.ANALYST || !principal.agencyId) {
    return { refusals: [refusal('ROLE', 'Only analysts query records')] };
  }
  const { query, variables, operationName } = request ?? {};
  if (typeof query !== 'string' || !query.trim()) {
    return { message: 'The request needs a GraphQL query string' };
  }
  if (query.length > MAX_QUERY_LENGTH) return { message: 'The query is too large' };
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
    return { message: 'variables must be an object' };
  }
  if (operationName != null && typeof operationName !== 'string') {
    return { message: 'operationName must be a string' };
  }
  return null;
}

/**
 * Authorises every root field of an analysed operation under the caller's policy, on every request:
 * the agreement chosen for its dataset and purpose, its bounds, and every name it reads, filters,
 * orders or groups by, all decided by libs/policy. Nothing runs unless all are allowed.
 */
export function authorise(
  analysis: Analysis,
  policy: CallerPolicy,
): { plans: Plan[]; refusals: DataPlaneRefusal[] } {
  const { shapes, active } = policy;
  const plans: Plan[] = [];
  const refusals: DataPlaneRefusal[] = [];
  for (const request of analysis.roots) {
    const { responseKey, root, fields, args } = request;
    if (!args) continue;
    if (!root) {
      refusals.push(refusal('NO_AGREEMENT_IN_FORCE', 'Not granted', { responseKey }));
      continue;
    }
    const shape = shapes.get(root.datasetId)!;
    const aggregate = root.kind === 'AGGREGATE';
    const groupBy = aggregate ? (args.groupBy ?? []) : [];
    const audit: RefusalAudit = {
      action: aggregate ? AuditAction.AGGREGATE : AuditAction.QUERY,
      purpose: args.purpose,
      datasetId: root.datasetId,
      fields: aggregate ? [...new Set(groupBy)].sort() : fields,
    };
    const refuse = (r: DataPlaneRefusal, extra: RefusalAudit = {}) =>
      refusals.push({ ...r, responseKey, audit: { ...audit, ...extra } });

    const chosen = chooseAgreement(active, root.datasetId, args.purpose, args.agreement);
    if ('refusal' in chosen) {
      refuse(chosen.refusal);
      continue;
    }
    const { agreement } = chosen;
    const chosenAudit = { agreementId: agreement.id, agreementVersion: agreement.version };
    const grant = agreement.grants.get(root.datasetId)!;
    const orderBy = (args.orderBy ?? []).map((o) => ({ field: o.field, direction: o.direction ?? 'ASC' }));
    let whereFields: string[];
    try {
      whereFields = whereFieldNames(args.where ?? null);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      refuse(refusalOf(error), chosenAudit);
      continue;
    }
    const denied =
      checkNames(agreement, shape, args.purpose, root.kind, {
        fields,
        whereFields,
        orderFields: orderBy.map((o) => o.field),
        groupBy,
      }) ??
      checkBounds(root.kind, grant.access, args) ??
      (aggregate ? checkAggregateFilter(groupBy, whereFields) : null);
    if (denied) {
      refuse(denied, chosenAudit);
      continue;
    }
    // A cursor opens only for the query that made it: same agreement version, purpose, dataset,
    // ordering and filter (bound into its seal), else INVALID, as for anything this API did not write.
    const cursor = {
      secret: policy.cursorSecret,
      binding: cursorBinding({
        agreementId: agreement.id,
        version: agreement.version,
        purpose: args.purpose,
        datasetId: root.datasetId,
        orderBy,
        where: args.where ?? null,
      }),
    };
    const after = args.after == null || aggregate ? null : openCursor(cursor, args.after);
    if (args.after != null && !aggregate && after === null) {
      refuse(refusal('INVALID', 'after is not a cursor this API returned for this query'), chosenAudit);
      continue;
    }
    plans.push({
      kind: root.kind,
      responseKey,
      root,
      shape,
      agreement,
      grant,
      purpose: args.purpose,
      fields,
      columns: request.columns,
      where: args.where ?? null,
      orderBy,
      first: aggregate ? 0 : (args.first ?? 100),
      limit: aggregate || !request.firstGiven ? null : (args.first ?? null),
      after,
      cursor,
      groupBy,
      readable: aggregate ? readableGrants(active, root.datasetId) : [],
    });
  }
  return { plans, refusals };
}

/** The action a plan needs of its agreement's ability (for metrics and the audit log). */
export const planAction = (plan: Plan) => actionOf(plan.kind);
