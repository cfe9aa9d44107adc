// First: V8's flags apply from the first allocation on.
import './v8-flags';
import { createLogger, loadConfigOrExit } from '@broker/core';
import { loadLinkageConfig } from '@broker/linkage';
import { createBroker } from './bootstrap';

async function main() {
  const config = loadConfigOrExit(process.env, loadLinkageConfig);
  const logger = createLogger(config.LOG_LEVEL);
  const app = await createBroker(config, logger);
  await app.listen({ port: config.PORT, host: config.HOST });
  logger.info({ url: `http://${config.HOST}:${config.PORT}` }, 'broker listening');
}

main().catch((error: unknown) => {
  process.stderr.write(`broker failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
