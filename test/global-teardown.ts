import { dropDatabase } from '../libs/core/src/database/ensure-database';
import { serverUrl } from '../libs/testing/src/test-database';

/** Drops this run's template database. */
export default async function globalTeardown() {
  const name = process.env.BROKER_TEST_TEMPLATE;
  if (name) await dropDatabase(serverUrl(name));
}
