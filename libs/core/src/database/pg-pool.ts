import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * The pg pool behind TypeORM's data source (its PostgreSQL driver's public `master` pool), for what
 * TypeORM does not do: COPY streams and statements built by the policy compiler. Shares TypeORM's
 * connections and limits.
 */
export function pgPool(dataSource: DataSource): Pool {
  const pool = (dataSource.driver as { master?: Pool }).master;
  if (!pool) throw new Error('the data source is not initialised');
  return pool;
}
