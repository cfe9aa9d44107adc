/** Every BullMQ queue of the broker. Job payloads carry ids only, never personal data. */
export enum QueueName {
  /** Record linkage: runs split into units of work (see `@broker/linkage`). */
  LINKAGE = 'linkage',
  /** The daily destruction of records past their dataset's retention (see `@broker/registry`). */
  RETENTION = 'retention',
}

/** Payload of a retention run: why it runs. The run itself reads which datasets from PostgreSQL. */
export interface RetentionJob {
  trigger: 'schedule' | 'overdue' | 'manual';
}

/** ioredis options of a Redis URL. */
function redisOptions(redisUrl: string) {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
  };
}

/**
 * BullMQ connection options as BullMQ's production guide asks for worker connections: commands
 * wait for Redis to come back (no retry limit), and ioredis reconnects forever.
 */
export function workerConnection(redisUrl: string) {
  return {
    ...redisOptions(redisUrl),
    // Workers must wait for Redis to come back rather than fail their blocking commands.
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times: number) => Math.min(1000 * 2 ** Math.min(times, 5), 20_000),
  };
}

/**
 * Connection options for producers (the broker adding jobs), as the production guide advises:
 * fail fast while Redis is down rather than queue commands, so a request is not held up; state
 * that must not be lost is in PostgreSQL, and the workers pick it up from there.
 */
export function producerConnection(redisUrl: string) {
  return {
    ...redisOptions(redisUrl),
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times: number) => Math.min(1000 * 2 ** Math.min(times, 5), 20_000),
  };
}
