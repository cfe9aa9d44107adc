import type { GraphQLError } from 'graphql';
import { LIMIT_MESSAGE, renderGraphQLError } from '@broker/core';
import { refusal, releasedAsOf } from '@broker/policy';
import type { DataPlaneRefusal, DataPlaneResponse } from './plan';
import type { CallerPolicy } from './policy-cache.service';
import type { Splice } from './request-analysis';

/** What one page's statement returned: its nodes as PostgreSQL's JSON text. */
export interface PageResult {
  kind: 'ROWS';
  /** The nodes, as the bytes of their JSON array. */
  nodes: Buffer;
  /** A Float value that GraphQL cannot represent (NaN, ±Infinity) is among the nodes. */
  unrepresentable: boolean;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  rowCount: number;
  /** The returned rows' random ids as PostgreSQL's array text, when releases are recorded. */
  rids: string | null;
  /** The digest of `rids` (see ReleaseDigest), computed as the rows arrived; null without them. */
  releaseDigest: string | null;
}

// Validation failures that name something outside the caller's schema: a request for data it is not
// granted, answered as such whether the thing exists for others or not at all.
const OUTSIDE_SCHEMA =
  /^(Cannot query field|Unknown argument|Unknown type)|Field "[^"]*" is not defined by type|does not exist in "[A-Za-z0-9_]+" enum/;
const PURPOSE_ENUM = /does not exist in "Purpose" enum/;

// The name asked for and the type it was asked on, in graphql-js's messages.
const ASKED =
  /^Cannot query field "([^"]{1,64})" on type "([A-Za-z0-9_]+)"|^Value "([^"]{1,64})" does not exist in "([A-Za-z0-9_]+?)Field" enum|^Field "([^"]{1,64})" is not defined by type "([A-Za-z0-9_]+?)(?:Where|OrderBy)"/;

/**
 * A validation or variable error as the caller sees it: naming nothing it may not see. A name not in
 * the caller's schema says, where one of its agreements releases that field under another name,
 * which (`releasedAs`): what its own agreements already show it.
 */
export function classify(error: GraphQLError, policy?: CallerPolicy): DataPlaneRefusal {
  const { message } = error;
  if (PURPOSE_ENUM.test(message)) return refusal('PURPOSE_NOT_GRANTED', message);
  if (OUTSIDE_SCHEMA.test(message)) {
    const asked = ASKED.exec(message);
    const field = asked ? (asked[1] ?? asked[3] ?? asked[5]) : undefined;
    const type = asked ? (asked[2] ?? asked[4] ?? asked[6]) : undefined;
    // The row root field of a dataset the caller's agreements grant for counts only (AGGREGATE_ONLY):
    // its own agreements show that much, so the refusal says so.
    if (field && type === 'Query' && policy && countsOnly(policy, field)) {
      return refusal('ROWS_NOT_GRANTED', 'Your agreements release this dataset for aggregates only');
    }
    const releasedAs = field && type && policy ? releasedAsFor(policy, type, field) : undefined;
    return refusal('FIELD_NOT_RELEASED', message, {
      ...(field ? { field } : {}),
      ...(releasedAs ? { releasedAs } : {}),
    });
  }
  if (LIMIT_MESSAGE.test(message)) return refusal('LIMIT', 'The query is too large or too complex');
  return refusal('INVALID', message);
}

/**
 * The refusal of a read that PostgreSQL stopped at its time limit (the readers' `statement_timeout`,
 * SQLSTATE 57014 for that reason): the request costs more than the broker answers, a `LIMIT`
 * (DESIGN §4.2: without saying where the limit is), never a failure. Null for any other error.
 */
export function timeLimitRefusal(error: unknown): DataPlaneRefusal | null {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code !== '57014' || typeof e.message !== 'string' || !/statement timeout/.test(e.message)) {
    return null;
  }
  return refusal('LIMIT', 'The query is too costly to answer: narrow it');
}

/**
 * Whether `root` is the row root field of a dataset that the caller's active agreements grant, yet
 * not for rows: the schema has no such field only where every grant of it is AGGREGATE_ONLY.
 */
function countsOnly(policy: CallerPolicy, root: string): boolean {
  const shape = [...policy.shapes.values()].find((s) => s.slug === root);
  return !!shape && policy.active.some((a) => a.grants.has(shape.id));
}

/** The name under which the caller's agreements release the field `name` of the dataset typed `type`. */
function releasedAsFor(policy: CallerPolicy, type: string, name: string): string | undefined {
  const shape = [...policy.shapes.values()].find((s) => s.typeName === type);
  if (!shape) return undefined;
  for (const agreement of policy.active) {
    const grant = agreement.grants.get(shape.id);
    const releasedAs = grant && releasedAsOf(grant, shape, name);
    if (releasedAs) return releasedAs;
  }
  return undefined;
}

/** Denials first: whether a request is refused never depends on the order of its parts. */
export function orderRefusals(all: DataPlaneRefusal[]): DataPlaneRefusal[] {
  return [
    ...all.filter((r) => r.code !== 'BAD_USER_INPUT'),
    ...all.filter((r) => r.code === 'BAD_USER_INPUT'),
  ];
}

/** The response of a refused request: `data: null` and every refusal with its code and reason. */
export function refusalResponse(refusals: DataPlaneRefusal[], status = 200): DataPlaneResponse {
  return {
    status,
    body: {
      data: null,
      errors: orderRefusals(refusals).map((r) =>
        renderGraphQLError({
          code: r.code,
          message: r.message,
          reason: r.reason,
          path: r.responseKey ? [r.responseKey] : undefined,
          extensions: {
            ...(r.field !== undefined ? { field: r.field } : {}),
            ...(r.releasedAs !== undefined ? { releasedAs: r.releasedAs } : {}),
            ...(r.agreements !== undefined ? { agreements: r.agreements } : {}),
          },
        }),
      ),
    },
  };
}

/** A failure after the decision (the audit write, an unrepresentable value): no data leaves. */
/** A key that stopped working (revoked, or its user deactivated) since this instance last saw it. */
export function unauthenticatedResponse(): DataPlaneResponse {
  return {
    status: 401,
    body: {
      data: null,
      errors: [renderGraphQLError({ code: 'UNAUTHENTICATED', message: 'The API key is not valid' })],
    },
  };
}

export function failureResponse(message: string, status: number): DataPlaneResponse {
  return {
    status,
    body: { data: null, errors: [renderGraphQLError({ code: 'INTERNAL_SERVER_ERROR', message })] },
  };
}

/**
 * The response of a plain operation (see {@link Splice}), written around each page's JSON bytes,
 * after the audit write: the same JSON value graphql-js would write.
 */
export function spliceResponse(splice: Splice, results: Map<string, PageResult>): Buffer {
  const parts: Buffer[] = [];
  let out = '{"data":{';
  splice.forEach(({ responseKey, members }, i) => {
    const page = results.get(responseKey)!;
    out += `${i ? ',' : ''}${JSON.stringify(responseKey)}:{`;
    members.forEach((member, j) => {
      out += `${j ? ',' : ''}${JSON.stringify(member.key)}:`;
      if ('nodes' in member) {
        parts.push(Buffer.from(out, 'utf8'), page.nodes);
        out = '';
        return;
      }
      const { hasNextPage, endCursor } = page.pageInfo;
      out += `{${member.pageInfo
        .map(
          ([key, name]) =>
            `${JSON.stringify(key)}:${name === 'hasNextPage' ? String(hasNextPage) : JSON.stringify(endCursor)}`,
        )
        .join(',')}}`;
    });
    out += '}';
  });
  parts.push(Buffer.from(`${out}}}`, 'utf8'));
  return Buffer.concat(parts);
}
