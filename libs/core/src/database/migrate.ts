import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { ensureDatabase } from './ensure-database';
import { MIGRATIONS } from './migrations';

// Serialises migration runs of brokers that start together; any fixed 64-bit number works.
const MIGRATION_LOCK = 7_305_118_221;

/**
 * Creates the database if missing and runs pending migrations, one broker at a time.
 * Returns the names of the migrations it ran.
 */
export async function migrate(databaseUrl: string): Promise<string[]> {
  await ensureDatabase(databaseUrl);
  const dataSource = new DataSource({
    type: 'postgres',
    url: databaseUrl,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
  });
  // The lock lives on a session of its own: a pool could run lock and unlock on different sessions.
  const lock = new Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await dataSource.initialize();
    try {
      const ran = await dataSource.runMigrations({ transaction: 'each' });
      return ran.map((m) => m.name);
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await lock.end();
  }
}
