import { Injectable, Optional } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Kind, type OperationDefinitionNode, type ValueNode, getOperationAST, parse } from 'graphql';
import { AuthService } from '@broker/auth';
import { contractReason, isUuid } from '@broker/core';
import { type RecordedRefusal, type RefusalAsked, RefusalRecorder } from './refusal-recorder';

declare module 'fastify' {
  interface FastifyRequest {
    /** The data plane answered (and audited) this request itself. */
    auditedByDataPlane?: boolean;
  }
}

// Where a request's values are conditions on records, not ids: never copied into the log.
const VALUES_NOT_IDS = new Set(['rowFilter', 'where', 'filter', 'records']);
const MAX_IDS = 20;

/**
 * Writes the DENY event of every refused request of a signed-in caller before the answer leaves:
 * control-plane GraphQL errors, REST refusals, and refusals made before the data plane saw the
 * request (the data plane audits its own). It reads the refusal from the rendered answer, so every
 * refusal is recorded with exactly the code and reason the caller gets. Unauthenticated requests
 * are counted in metrics only, by the authentication hook.
 */
@Injectable()
export class RefusalAuditHook {
  constructor(
    private readonly recorder: RefusalRecorder,
    // Absent in the worker, which serves no requests.
    @Optional() private readonly auth?: AuthService,
  ) {}

  /** Installs the `onSend` hook on the broker's fastify instance. */
  register(fastify: FastifyInstance) {
    fastify.addHook('onSend', async (request, reply, payload) => {
      await this.onSend(request, reply, payload);
      return payload;
    });
  }

  private async onSend(request: FastifyRequest, reply: FastifyReply, payload: unknown) {
    const endpoint = endpointOf(request.url);
    if (!endpoint) return;
    // Unauthenticated requests are counted by the authentication hook (metrics only).
    if (!request.principal) return;
    if (endpoint === '/data/graphql' && request.auditedByDataPlane) return;
    if (endpoint !== '/graphql' && reply.statusCode < 400) return;
    if (typeof payload !== 'string') return;
    if (!payload.includes('"errors":[') && !payload.includes('"code":')) return;
    const refusals = refusalsOf(payload);
    if (!refusals.length) return;
    // A remembered principal whose key no longer works is no one the audit log could name.
    if (request.principalUnverified && !(await this.auth?.stillWorks(request.principal))) return;
    const asked = () =>
      endpoint === '/api'
        ? restAsked(request)
        : graphqlAsked(request.body as { query?: unknown; variables?: unknown; operationName?: unknown });
    await this.recorder.record(request.principal, endpoint, refusals, asked);
  }
}

function endpointOf(url: string): '/graphql' | '/data/graphql' | '/api' | null {
  if (/^\/graphql(\/|\?|$)/.test(url)) return '/graphql';
  if (/^\/data\//.test(url)) return '/data/graphql';
  if (/^\/api\//.test(url) && !/^\/api\/register(\/|\?|$)/.test(url)) return '/api';
  return null;
}

/** The refusals of a rendered answer: GraphQL `errors`, or a REST error body. */
function refusalsOf(payload: string): RecordedRefusal[] {
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return [];
  }
  if (!body || typeof body !== 'object') return [];
  const { errors, code, error } = body as {
    errors?: unknown;
    code?: unknown;
    error?: unknown;
    reason?: unknown;
  };
  if (Array.isArray(errors)) {
    return errors.flatMap((e: { message?: unknown; extensions?: { code?: unknown; reason?: unknown } }) => {
      const c = typeof e?.extensions?.code === 'string' ? e.extensions.code : null;
      if (!c || c === 'INTERNAL_SERVER_ERROR') return [];
      const r = typeof e.extensions?.reason === 'string' ? e.extensions.reason : undefined;
      return [
        {
          code: c,
          reason: contractReason(c, r) ?? 'INVALID',
          message: typeof e.message === 'string' ? e.message : '',
        },
      ];
    });
  }
  if (typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') {
    const r = (body as { reason?: unknown }).reason;
    return [
      {
        code,
        reason: contractReason(code, typeof r === 'string' ? r : undefined) ?? 'INVALID',
        message: typeof error === 'string' ? error : '',
      },
    ];
  }
  return [];
}

/** What a GraphQL request asked: its root fields and the ids it names (never other values). */
export function graphqlAsked(body: { query?: unknown; variables?: unknown; operationName?: unknown } | null) {
  const asked: RefusalAsked = { operations: [], ids: [] };
  const ids = new Set<string>();
  const variables =
    body && typeof body.variables === 'object' && body.variables !== null
      ? (body.variables as Record<string, unknown>)
      : {};
  collectIds(variables, ids, 0);
  const query = body && typeof body === 'object' ? body.query : undefined;
  if (typeof query === 'string' && query.length <= 100_000) {
    let operation: OperationDefinitionNode | null;
    try {
      const document = parse(query, { maxTokens: 5_000, noLocation: true });
      operation =
        getOperationAST(document, typeof body?.operationName === 'string' ? body.operationName : undefined) ??
        null;
    } catch {
      operation = null;
    }
    const roots = new Set<string>();
    for (const selection of operation?.selectionSet.selections ?? []) {
      if (selection.kind !== Kind.FIELD) continue;
      roots.add(selection.name.value);
      for (const argument of selection.arguments ?? []) {
        collectLiteralIds(argument.name.value, argument.value, ids, 0, variables);
        // The object the operation is about, so that its parties and auditors see the attempt: an
        // agreement or dataset named by an argument of its name, or by `id` of an operation on one.
        const named = targetOf(selection.name.value, argument.name.value);
        if (!named || asked[named]) continue;
        const found = new Set<string>();
        collectLiteralIds(argument.name.value, argument.value, found, 0, variables);
        if (found.size === 1) asked[named] = [...found][0];
      }
    }
    asked.operations = [...roots].slice(0, MAX_IDS);
  }
  asked.ids = [...ids].slice(0, MAX_IDS);
  return asked;
}

/** Which target an argument of a root field names: `agreementId`, `datasetId`, or `id` of one. */
function targetOf(root: string, argument: string): 'agreementId' | 'datasetId' | null {
  if (argument === 'agreementId' || argument === 'datasetId') return argument;
  if (argument !== 'id') return null;
  if (/agreement/i.test(root)) return 'agreementId';
  if (/dataset/i.test(root)) return 'datasetId';
  return null;
}

function restAsked(request: FastifyRequest): RefusalAsked {
  const ids = new Set<string>();
  collectIds(request.params, ids, 0);
  const route = request.routeOptions.url ?? request.url.split('?')[0];
  const datasetId = [...ids][0] ?? null;
  return { operations: [`${request.method} ${route}`], ids: [...ids], datasetId };
}

function isIdKey(key: string): boolean {
  return key === 'id' || /[a-z]Id$/.test(key);
}

function collectIds(value: unknown, ids: Set<string>, depth: number, key = '') {
  if (ids.size >= MAX_IDS || depth > 8 || value == null) return;
  if (typeof value === 'string') {
    if (isIdKey(key) && isUuid(value)) ids.add(value.toLowerCase());
    return;
  }
  if (typeof value !== 'object') return;
  if (Array.isArray(value)) {
    for (const item of value.slice(0, 100)) collectIds(item, ids, depth + 1, key);
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, 100)) {
    if (VALUES_NOT_IDS.has(k)) continue;
    collectIds(v, ids, depth + 1, k);
  }
}

function collectLiteralIds(
  key: string,
  value: ValueNode,
  ids: Set<string>,
  depth: number,
  variables: Record<string, unknown>,
) {
  if (ids.size >= MAX_IDS || depth > 8 || VALUES_NOT_IDS.has(key)) return;
  if (value.kind === Kind.VARIABLE) {
    // An id passed in a variable of any name: what the argument names it decides.
    collectIds(variables[value.name.value], ids, depth + 1, key);
  } else if (value.kind === Kind.STRING) {
    if (isIdKey(key) && isUuid(value.value)) ids.add(value.value.toLowerCase());
  } else if (value.kind === Kind.LIST) {
    for (const item of value.values.slice(0, 100)) collectLiteralIds(key, item, ids, depth + 1, variables);
  } else if (value.kind === Kind.OBJECT) {
    for (const field of value.fields.slice(0, 100)) {
      collectLiteralIds(field.name.value, field.value, ids, depth + 1, variables);
    }
  }
}
