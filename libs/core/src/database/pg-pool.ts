import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';
import { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/**
 * The pg pool behind TypeORM's data source (the driver's public `master` pool), for what TypeORM
 * does not do: COPY streams and statements built by the policy compiler. Shares TypeORM's
 * connections and limits.
 */
export function pgPool(dataSource: DataSource): Pool {
  const { driver } = dataSource;
  if (!(driver instanceof PostgresDriver) || !driver.master) {
    throw new Error('the data source is not an initialised PostgreSQL data source');
  }
  return driver.master as Pool;
}
