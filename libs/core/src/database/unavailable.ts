/** Network errors of a connection that could not be made or was lost. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** SQLSTATEs of a server shutting down, crashed, starting up or full (57P01-57P03, 53300). */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** node-postgres's messages for a connection that ended under it, or a pool that could not connect. */
const LOST_CONNECTION = /^Connection terminated|not queryable|timeout exceeded when trying to connect/i;

/**
 * Whether an error says that PostgreSQL could not be reached (refused, lost, restarting, crashed),
 * as opposed to a failure of the statement's own work: linkage waits the former out, and the data
 * plane bills no budget for a read it cut (see DataPlaneService). Looks through wrapped errors (`driverError`, `cause`).
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 3) return false;
  const { code, message, driverError, cause } = error as {
    code?: unknown;
    message?: unknown;
    driverError?: unknown;
    cause?: unknown;
  };
  if (typeof code === 'string') {
    if (NETWORK_ERRORS.has(code) || UNAVAILABLE_STATES.has(code) || code.startsWith('08')) return true;
  }
  if (typeof message === 'string' && LOST_CONNECTION.test(message)) return true;
  return isDatabaseUnavailable(driverError, depth + 1) || isDatabaseUnavailable(cause, depth + 1);
}
