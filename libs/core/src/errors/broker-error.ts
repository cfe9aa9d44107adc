/** The error codes of the public contract, found in `errors[].extensions.code`. */
export enum ErrorCode {
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  NOT_FOUND = 'NOT_FOUND',
  CONFLICT = 'CONFLICT',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR',
}

/**
 * The one exception type services throw for an expected refusal. Each domain names its reasons in
 * a `reason` string (e.g. `DATASET_SLUG_TAKEN`) and maps them onto a contract {@link ErrorCode}.
 *
 * @example throw new BrokerError(ErrorCode.CONFLICT, 'A dataset with this slug exists', { reason: 'DATASET_SLUG_TAKEN' })
 */
export class BrokerError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: { reason?: string; details?: unknown } = {},
  ) {
    super(message);
    this.name = 'BrokerError';
  }
}

/** The HTTP status a REST route answers for each contract code. */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.UNAUTHENTICATED:
      return 401;
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.BAD_USER_INPUT:
      return 400;
    case ErrorCode.NOT_FOUND:
      return 404;
    case ErrorCode.CONFLICT:
      return 409;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.INTERNAL_SERVER_ERROR:
      return 500;
  }
}

export const notFound = (what: string) => new BrokerError(ErrorCode.NOT_FOUND, `${what} not found`);
export const forbidden = (message = 'Not allowed') => new BrokerError(ErrorCode.FORBIDDEN, message);
export const badInput = (message: string, details?: unknown) =>
  new BrokerError(ErrorCode.BAD_USER_INPUT, message, { details });
export const conflict = (message: string) => new BrokerError(ErrorCode.CONFLICT, message);
