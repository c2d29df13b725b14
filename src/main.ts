import 'reflect-metadata';
import { createApp } from './bootstrap';
import { ConfigError, loadConfig } from './config/app-config';
import { FleetFileError } from './fleet/fleet-file';
import { createAppLogger } from './logging/logger';

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
  const { logger, flush } = createAppLogger(config.logLevel);
  const app = await createApp(config, logger);
  // Stop taking requests, let workers record what is in flight, flush the logs, then exit.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      app
        .close()
        .catch((error: unknown) => logger.error({ err: error }, 'error while shutting down'))
        .finally(() => {
          flush();
          process.exit(0);
        });
    });
  }
  await app.listen({ port: config.port, host: config.host });
  logger.info(
    { port: config.port, host: config.host, database: config.database.kind, hypervisor: config.hypervisorDriver, demo: config.demo },
    `vmplane listening on http://${config.host}:${config.port} (docs at /docs)`,
  );
}

main().catch((error: unknown) => {
  // Mistakes in what the operator supplied get their message; anything else is a fault and keeps its stack.
  const expected = error instanceof FleetFileError;
  const text = error instanceof Error ? (expected ? error.message : (error.stack ?? error.message)) : String(error);
  process.stderr.write(`vmplane: failed to start: ${text}\n`);
  process.exit(1);
});
