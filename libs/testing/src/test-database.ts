import { randomBytes } from 'node:crypto';
import { ensureDatabase } from '@broker/core';

/**
 * The database that test databases are cloned from, built by the jest global setup. Each jest run
 * names its own (the setup exports it to the workers), so runs side by side never rebuild one
 * another's template.
 */
export function templateDatabase(): string {
  return process.env.BROKER_TEST_TEMPLATE ?? 'broker_test_template';
}

/** The URL of a database on the test server (`TEST_DATABASE_URL`'s server, default the local one). */
export function serverUrl(database: string): string {
  const url = new URL(process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates a fresh, migrated database for one test file and returns its URL. */
export async function createTestDatabase(label = 'test'): Promise<string> {
  const name = `broker_${label.replace(/[^a-z0-9_]/g, '_').slice(0, 20)}_${randomBytes(4).toString('hex')}`;
  const url = serverUrl(name);
  await ensureDatabase(url, templateDatabase());
  return url;
}
