import { Pool, type PoolClient } from 'pg';

/**
 * Shortens the statement time limit of the next connection the broker takes from its readers' pool
 * (Database.read), to `limit`: for a test that needs a page's statement to run out of time. `armed()`
 * says whether that connection is still to come; `restore()` puts Pool.prototype.connect back.
 */
export function shortenNextReaderTimeout(limit: string): { armed: () => boolean; restore: () => void } {
  const connect = Pool.prototype.connect as (this: Pool) => Promise<PoolClient>;
  let armed = true;
  const spy = jest.spyOn(Pool.prototype, 'connect').mockImplementation(async function (
    this: Pool,
    ...args: unknown[]
  ) {
    if (args.length) return (connect as (...a: unknown[]) => unknown).apply(this, args);
    const client = await connect.call(this);
    if (armed && this.options.application_name === 'data-sharing-broker-reader') {
      armed = false;
      await client.query(`SET statement_timeout = '${limit.replace(/'/g, "''")}'`);
    }
    return client;
  } as never);
  return { armed: () => armed, restore: () => spy.mockRestore() };
}
