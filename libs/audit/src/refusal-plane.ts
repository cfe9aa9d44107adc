import { registerEnumType } from '@nestjs/graphql';
import { AuditAction } from './audit-action.enum';

/** Which plane refused a request. */
export enum RequestPlane {
  /** The control plane: `/graphql` and the REST routes. */
  CONTROL = 'CONTROL',
  /** The data plane: `/data/graphql` and `/data/export`. */
  DATA = 'DATA',
}

registerEnumType(RequestPlane, {
  name: 'RequestPlane',
  description: 'Which plane refused a request.',
  valuesMap: {
    CONTROL: { description: 'The control plane: /graphql and the REST routes.' },
    DATA: { description: 'The data plane: /data/graphql and /data/export.' },
  },
});

/**
 * Reading refusals off DENY events, for the log (one event) and the series (counted in SQL): the
 * same two rules, written once each way beside each other.
 *
 * - The plane: the data plane's own actions, or a refusal its endpoint made before the data plane
 *   saw the request (`details.endpoint`, written by RefusalRecorder); anything else the control plane.
 * - The count: one, or the number of merged LIMIT refusals, which RefusalRecorder writes as
 *   `rowCount` (a refusal releases no rows, so nothing else is there).
 */
const DATA_PLANE_ACTIONS: readonly string[] = [AuditAction.QUERY, AuditAction.AGGREGATE, AuditAction.EXPORT];
const DATA_PLANE_ENDPOINT = '/data/graphql';

/** The plane that refused what a DENY event records. */
export function refusalPlane(action: string, details: Record<string, unknown> | null): RequestPlane {
  return DATA_PLANE_ACTIONS.includes(action) || details?.endpoint === DATA_PLANE_ENDPOINT
    ? RequestPlane.DATA
    : RequestPlane.CONTROL;
}

/** The refused requests a DENY event stands for. */
export function refusalCount(rowCount: number | null): number {
  return Math.max(rowCount ?? 1, 1);
}

/** {@link refusalPlane} in SQL, over `audit_event` as `e`. */
export const REFUSAL_PLANE_SQL = `CASE WHEN e.action IN (${DATA_PLANE_ACTIONS.map((a) => `'${a}'`).join(', ')})
  OR e.details->>'endpoint' = '${DATA_PLANE_ENDPOINT}' THEN '${RequestPlane.DATA}' ELSE '${RequestPlane.CONTROL}' END`;

/** {@link refusalCount} in SQL, over `audit_event` as `e`. */
export const REFUSAL_COUNT_SQL = 'greatest(coalesce(e.row_count, 1), 1)';
