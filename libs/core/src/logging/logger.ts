import type { LoggerService } from '@nestjs/common';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/**
 * The broker's pino logger. Record values never reach it: request bodies are not logged, and
 * credentials in headers are redacted.
 */
export function createLogger(level: string, name = 'broker', destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    name,
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'headers.authorization',
        '*.apiKey',
        'apiKey',
      ],
      censor: '[redacted]',
    },
    serializers: {
      // The query string is dropped: GraphQL over GET would carry queries and variables there.
      req: (req: { method?: string; url?: string; id?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url?.split('?')[0],
      }),
      err: errorForLog,
    },
  };
  // Standard output, written off the event loop (sonic-boom's asynchronous mode: lines written while
  // a write is under way go out together with the next), and flushed when the process exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}

/**
 * What an error contributes to a log line. Database errors keep their SQLSTATE and the names of the
 * objects involved but lose message and detail, which can quote record values ("Key (ssn)=(...)").
 */
export function errorForLog(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & Record<string, unknown>;
  if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && 'severity' in e) {
    return {
      type: 'DatabaseError',
      code: e.code,
      table: e.table,
      column: e.column,
      constraint: e.constraint,
      routine: e.routine,
      stack: e.stack?.split('\n').slice(1).join('\n'),
    };
  }
  return { type: e.name, message: e.message, code: e.code, stack: e.stack };
}

/** Routes Nest's own log lines into pino. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, context?: string) {
    this.logger.info({ context }, String(message));
  }
  error(message: unknown, trace?: string, context?: string) {
    this.logger.error({ context, trace }, String(message));
  }
  warn(message: unknown, context?: string) {
    this.logger.warn({ context }, String(message));
  }
  debug(message: unknown, context?: string) {
    this.logger.debug({ context }, String(message));
  }
  verbose(message: unknown, context?: string) {
    this.logger.trace({ context }, String(message));
  }
}

/** Nest injection token of the pino {@link Logger}. */
export const LOGGER = Symbol('LOGGER');
