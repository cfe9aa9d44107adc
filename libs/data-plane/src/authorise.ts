import { AuditAction } from '@broker/audit';
import { type Principal, Role } from '@broker/auth';
import {
  type CompiledAgreement,
  type CountUnit,
  type DataWhere,
  type LinkedArgs,
  type Refusal,
  actionOf,
  aggregateIsExact,
  checkBounds,
  checkLinked,
  checkNames,
  checkPerturbedFilter,
  checkUnit,
  chooseAgreement,
  PolicyError,
  refusal,
  refusalOf,
  whereFieldNames,
} from '@broker/policy';
import type { LinkedPlan } from './aggregate';
import { LINKED_CONDITION_FIELDS } from './caller-schema';
import { cursorBinding, openCursor } from './cursor';
import type { DataPlaneRefusal, DataPlaneRequest, Plan, RefusalAudit } from './plan';
import type { CallerPolicy } from './policy-cache.service';
import type { Analysis } from './request-analysis';

const MAX_QUERY_LENGTH = 100_000;

/**
 * Checks that need no policy: the caller's role and the request's shape. Returns null when the
 * request may go on, refusals (audited; `status` 400 for a request over a limit) for a caller who
 * reads no records or a query too large, or a message (400).
 */
export function precheck(
  principal: Principal,
  request: DataPlaneRequest | null | undefined,
):
  | { refusals: DataPlaneRefusal[]; status?: number; message?: never }
  | { message: string; refusals?: never }
  | null {
  if (principal.role !== Role.ANALYST || !principal.agencyId) {
    return { refusals: [refusal('ROLE', 'Only analysts query records')] };
  }
  const { query, variables, operationName } = request ?? {};
  if (typeof query !== 'string' || !query.trim()) {
    return { message: 'The request needs a GraphQL query string' };
  }
  // A size limit, like depth, aliases and cost: LIMIT, without saying where the limit is.
  if (query.length > MAX_QUERY_LENGTH) {
    return { refusals: [refusal('LIMIT', 'The query is too large')], status: 400 };
  }
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
      fields: aggregate ? namesOf(groupBy) : fields,
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
    const unit: CountUnit = aggregate ? (args.unit ?? 'RECORDS') : 'RECORDS';
    const linkedEntries = aggregate
      ? Object.entries(args.linked ?? {}).filter(
          (entry): entry is [string, LinkedArgs] =>
            !LINKED_CONDITION_FIELDS.has(entry[0]) && entry[1] != null,
        )
      : [];
    // A condition holds no further condition: one linked dataset per count.
    const nested = linkedEntries.some(([, l]) =>
      Object.entries(l).some(([key, value]) => !LINKED_CONDITION_FIELDS.has(key) && value != null),
    );
    const linkedAfter = linkedEntries.length === 1 ? (linkedEntries[0][1].after ?? null) : null;
    const denied =
      checkNames(agreement, shape, args.purpose, root.kind, {
        fields,
        whereFields: linkedAfter === null ? whereFields : [...whereFields, linkedAfter],
        orderFields: orderBy.map((o) => o.field),
        groupBy,
      }) ??
      checkBounds(root.kind, grant.access, args) ??
      (aggregate ? checkUnit(grant, unit) : null) ??
      (linkedEntries.length > 1 || nested ? refusal('INVALID', 'linked names one other dataset') : null);
    if (denied) {
      // What was asked: every name read, filtered, ordered or grouped by, so the event shows which
      // name was refused however the request reached it (a variable, a default, a fragment).
      const asked = namesOf(
        audit.fields!,
        whereFields,
        orderBy.map((o) => o.field),
        linkedAfter ?? [],
      );
      refuse(denied, { ...chosenAudit, fields: asked });
      continue;
    }
    let linked: LinkedPlan | null = null;
    if (linkedEntries.length === 1) {
      const [slug, linkedArgs] = linkedEntries[0];
      const other = authoriseLinked(policy, shape.id, args.purpose, slug, linkedArgs);
      if ('refusal' in other) {
        // The other side's refusal is its own event, under its own dataset and agreement.
        refuse(other.refusal, { ...chosenAudit, ...other.audit });
        continue;
      }
      const linkedRefusal = checkLinked(grant, other.plan.grant, linkedArgs);
      if (linkedRefusal) {
        refuse(linkedRefusal, chosenAudit);
        continue;
      }
      linked = other.plan;
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
    const exact = aggregate ? aggregateIsExact(grant, unit, linked?.grant ?? null) : true;
    // A perturbed count's filters (and the HASH names it groups by) are bounded in weight: their time
    // must not tell a group apart.
    const heavy = exact
      ? null
      : (checkPerturbedFilter(args.where, grant, groupBy) ??
        (linked && checkPerturbedFilter(linked.where, linked.grant)));
    if (heavy) {
      refuse(heavy, chosenAudit);
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
      unit,
      linked,
      exact,
      minCellSize: Math.max(grant.minCellSize, linked?.grant.minCellSize ?? 0),
    });
  }
  return { plans, refusals };
}

/**
 * The other side of a linked count: the dataset named by its slug, the agreement chosen for it and
 * the purpose, and the names it uses (its `where` and the window's `on`), all decided as for a root
 * field of its own.
 */
function authoriseLinked(
  policy: CallerPolicy,
  datasetId: string,
  purpose: string,
  slug: string,
  args: LinkedArgs,
): { plan: LinkedPlan } | { refusal: Refusal; audit: RefusalAudit } {
  const shape = [...policy.shapes.values()].find((s) => s.slug === slug && s.id !== datasetId);
  if (!shape) return { refusal: refusal('NO_AGREEMENT_IN_FORCE', 'Not granted'), audit: {} };
  const chosen = chooseAgreement(policy.active, shape.id, purpose, args.agreement);
  const audit: RefusalAudit = { datasetId: shape.id, agreementId: undefined, agreementVersion: undefined };
  if ('refusal' in chosen) return { refusal: chosen.refusal, audit };
  const agreement: CompiledAgreement = chosen.agreement;
  Object.assign(audit, { agreementId: agreement.id, agreementVersion: agreement.version });
  const where = (args.where ?? null) as DataWhere | null;
  let whereFields: string[];
  try {
    whereFields = whereFieldNames(where);
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return { refusal: refusalOf(error), audit };
  }
  const on = args.on ?? null;
  const denied = checkNames(agreement, shape, purpose, 'AGGREGATE', {
    fields: [],
    whereFields: on === null ? whereFields : [...whereFields, on],
    orderFields: [],
    groupBy: [],
  });
  if (denied)
    return {
      refusal: denied,
      audit: { ...audit, fields: namesOf(whereFields, on ?? []) },
    };
  return {
    plan: {
      shape,
      agreement,
      grant: agreement.grants.get(shape.id)!,
      exists: args.exists ?? true,
      where,
      on,
      after: args.after ?? null,
      minDays: args.minDays ?? 0,
      maxDays: args.maxDays ?? null,
    },
  };
}

/** The action a plan needs of its agreement's ability (for metrics and the audit log). */
export const planAction = (plan: Plan) => actionOf(plan.kind);

/** The names of an audit event's `fields`: each once, in order. */
function namesOf(...lists: (readonly string[] | string)[]): string[] {
  return [...new Set(lists.flat())].sort();
}
