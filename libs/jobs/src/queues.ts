/** Every BullMQ queue of the broker. Job payloads carry ids only, never personal data. */
export enum QueueName {
  /** Housekeeping that must run somewhere: clearing expired state, checking the deployment. */
  MAINTENANCE = 'maintenance',
}

/** BullMQ connection options as BullMQ's production guide asks for worker connections. */
export function workerConnection(redisUrl: string) {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username || undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
    // Workers must wait for Redis to come back rather than fail their blocking commands.
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
  };
}
