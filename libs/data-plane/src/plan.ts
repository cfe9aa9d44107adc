import type { ExecutionResult } from 'graphql';
import type { AuditAction } from '@broker/audit';
import type { CompiledAgreement, CompiledGrant, CountUnit, DataWhere, Refusal } from '@broker/policy';
import type { DatasetShapeRecord } from '@broker/registry';
import type { LinkedPlan } from './aggregate';
import type { RootField } from './caller-schema';
import type { CursorScope } from './cursor';

/** The body of a data-plane request. */
export interface DataPlaneRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
}

/** A GraphQL error as the response carries it. */
export interface ErrorJson {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
}

/**
 * An HTTP answer: its status and GraphQL-shaped body, either as an object to serialise or, for the
 * common case, as the JSON already written, in UTF-8 (each page's JSON spliced in).
 */
export type DataPlaneResponse =
  | { status: number; body: ExecutionResult | { data: null; errors: ErrorJson[] } }
  | { status: number; json: Buffer };

/** One root field of a request, authorised and ready to run as one SQL statement. */
export interface Plan {
  /** A page of rows, or an aggregate's groups. */
  kind: 'ROWS' | 'AGGREGATE';
  responseKey: string;
  root: RootField;
  shape: DatasetShapeRecord;
  agreement: CompiledAgreement;
  grant: CompiledGrant;
  purpose: string;
  /** Released names read, sorted: what the audit log records. */
  fields: string[];
  /** Members of each node's JSON object, in order: [key, released name]. */
  columns: [string, string][];
  where: DataWhere | null;
  orderBy: { field: string; direction: 'ASC' | 'DESC' }[];
  first: number;
  /** `first` as the caller gave it, or null: an export is capped only when it was given. */
  limit: number | null;
  /** Where the page starts: the position a cursor held (see cursor.ts), or null for the first page. */
  after: (string | null)[] | null;
  /** What this plan's cursors are sealed with and bound to. */
  cursor: CursorScope;
  /** Aggregates: the released names to group by, in the caller's order. */
  groupBy: string[];
  /** Aggregates: records or distinct linked persons. */
  unit: CountUnit;
  /** Aggregates: the other dataset of a linked count, under its own agreement; else null. */
  linked: LinkedPlan | null;
  /**
   * Aggregates: whether the caller reads the rows of every dataset counted under the chosen
   * agreements, so counts are exact; otherwise they are perturbed (docs/disclosure-control.md).
   */
  exact: boolean;
  /** Aggregates: the minimum cell size, the larger of both grants' for a linked count. */
  minCellSize: number;
}

/** What the audit log records of a refused part of a request. */
export interface RefusalAudit {
  action?: AuditAction;
  purpose?: string;
  /**
   * A purpose the request named that none of the caller's agreements grants: recorded as the
   * event's purpose if it is one of the purposes defined (the public catalog), never as typed.
   */
  purposeAsked?: string;
  datasetId?: string;
  agreementId?: string;
  agreementVersion?: number;
  fields?: string[];
}

/** A refused part of a request, with what the audit log records of it. */
export interface DataPlaneRefusal extends Refusal {
  audit?: RefusalAudit;
}
