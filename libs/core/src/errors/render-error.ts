import { ErrorCode } from './broker-error';

/** A refusal or failure as the public sees it: a contract code, a message, and what it may name. */
export interface PublicError {
  code: ErrorCode | `${ErrorCode}`;
  message: string;
  /** The contract's `extensions.reason` (DESIGN §4). */
  reason?: string;
  /** Where in a GraphQL response the error stands. */
  path?: readonly (string | number)[];
  /** Further members of `extensions` (`field`, `releasedAs`, `agreements`, `details`). */
  extensions?: Record<string, unknown>;
}

/** The JSON of a GraphQL error: `{ message, path?, extensions: { code, reason?, ... } }`. */
export interface GraphQLErrorJson {
  message: string;
  locations?: readonly { line: number; column: number }[];
  path?: readonly (string | number)[];
  extensions: Record<string, unknown>;
}

const DID_YOU_MEAN = /\s*Did you mean[^?]*\?/g;

/** The contract's `extensions.reason` values (DESIGN §4). */
export const CONTRACT_REASONS: ReadonlySet<string> = new Set([
  'ROLE',
  'PURPOSE_NOT_GRANTED',
  'NO_AGREEMENT_IN_FORCE',
  'FIELD_NOT_RELEASED',
  'ROWS_NOT_GRANTED',
  'AGREEMENT_AMBIGUOUS',
  'LIMIT',
  'INVALID',
  'NOT_PARTY',
]);

/**
 * The reason a refusal explains itself with: its own when it is one of the contract's, otherwise
 * the contract's reason for its code (a domain's own reason, such as a slug taken, is INVALID).
 */
export function contractReason(code: string, reason: string | undefined): string | undefined {
  if (reason && CONTRACT_REASONS.has(reason)) return reason;
  switch (code) {
    case 'FORBIDDEN':
      return 'ROLE';
    case 'NOT_FOUND':
      return 'NOT_PARTY';
    case 'BAD_USER_INPUT':
    case 'CONFLICT':
    case 'UNAUTHENTICATED':
    case 'PAYLOAD_TOO_LARGE':
      return reason === 'LIMIT' || code === 'PAYLOAD_TOO_LARGE' ? 'LIMIT' : 'INVALID';
    default:
      return undefined;
  }
}

/**
 * The one renderer of errors, for both GraphQL endpoints and the REST routes: the same code,
 * reason and extensions everywhere, and never a hint at names ("Did you mean") the caller may not see.
 */
export function renderGraphQLError(
  error: PublicError,
  locations?: readonly { line: number; column: number }[],
): GraphQLErrorJson {
  const reason = contractReason(error.code, error.reason);
  return {
    message: error.message.replace(DID_YOU_MEAN, ''),
    ...(locations?.length ? { locations } : {}),
    ...(error.path ? { path: error.path } : {}),
    extensions: {
      code: error.code,
      ...(reason ? { reason } : {}),
      ...(error.extensions ?? {}),
    },
  };
}

/** A REST route's error body: `{ error, code, reason?, ... }`, the same members as on GraphQL. */
export function renderRestError(error: PublicError): Record<string, unknown> {
  const { extensions } = renderGraphQLError(error);
  return { error: error.message.replace(DID_YOU_MEAN, ''), ...extensions };
}

/** Strips GraphQL's suggestions of other names from a message. */
export function withoutSuggestions(message: string): string {
  return message.replace(DID_YOU_MEAN, '');
}

// The data plane's routes (`/data/graphql`, `/data/export`) and the control plane answer in
// GraphQL's shape, refusals made before a handler included; every other route in REST's.
const GRAPHQL_SHAPED = /^\/(graphql(\/|\?|$)|data\/)/;

/** Whether an answer to this URL has GraphQL's shape (`{ data: null, errors: [...] }`). */
export function answersInGraphQLShape(url: string): boolean {
  return GRAPHQL_SHAPED.test(url);
}

/**
 * The body of an error answered outside a GraphQL resolver (a refusal before any handler, a REST
 * route's error): GraphQL's shape on the GraphQL endpoints, REST's elsewhere.
 */
export function renderForUrl(url: string, error: PublicError): Record<string, unknown> {
  return answersInGraphQLShape(url)
    ? { data: null, errors: [renderGraphQLError(error)] }
    : renderRestError(error);
}
