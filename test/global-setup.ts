import { Client } from 'pg';
import { migrate } from '../libs/core/src/database/migrate';
import { dropDatabase } from '../libs/core/src/database/ensure-database';
import { TEMPLATE_DATABASE, serverUrl } from '../libs/testing/src/test-database';

/**
 * Builds the template database once per run by running every migration on an empty database;
 * each test file then clones it, so tests exercise the migrations and start in milliseconds.
 */
export default async function globalSetup() {
  const url = serverUrl(TEMPLATE_DATABASE);
  const probe = new Client({ connectionString: serverUrl('postgres') });
  await probe.connect().catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${serverUrl('postgres')}: ${error.message}`);
  });
  await probe.end();
  await dropDatabase(url);
  await migrate(url);
}
