import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../libs/core/src/database/migrate';
import { dropDatabase } from '../libs/core/src/database/ensure-database';
import { serverUrl } from '../libs/testing/src/test-database';

/**
 * Builds this run's template database by running every migration on an empty database; each test
 * file then clones it, so tests exercise the migrations and start in milliseconds. The name is set in
 * the environment, which jest's workers inherit.
 */
export default async function globalSetup() {
  process.env.BROKER_TEST_TEMPLATE = `broker_test_template_${randomBytes(4).toString('hex')}`;
  const url = serverUrl(process.env.BROKER_TEST_TEMPLATE);
  const probe = new Client({ connectionString: serverUrl('postgres') });
  await probe.connect().catch((error: Error) => {
    throw new Error(`PostgreSQL is not reachable at ${serverUrl('postgres')}: ${error.message}`);
  });
  await probe.end();
  await dropDatabase(url);
  await migrate(url);
}
