import 'reflect-metadata';
import { createApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';
import { createLogger } from './logging/logger';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`vmplane: refusing to start.\n${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const app = await createApp(config, logger);
  await app.listen({ port: config.port, host: config.host });
  logger.info(
    { port: config.port, host: config.host, database: config.database.kind, demo: config.demo },
    `vmplane listening on http://${config.host}:${config.port} (docs at /docs)`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`vmplane: failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
