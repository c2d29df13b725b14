import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Client } from '@vmplane/sdk';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AppModule } from '../../src/app.module';
import { configureApp, createAdapter } from '../../src/bootstrap';
import { loadConfig } from '../../src/config/app-config';
import { HYPERVISOR_CLIENT } from '../../src/hypervisor/hypervisor.constants';
import { PinoNestLogger } from '../../src/logging/logger';
import { TEST_JWT_SECRET, e2eDatabase, postgresDatabaseFor } from './server-process';

/**
 * The whole application in this process with the hypervisor Client replaced:
 * only for hypervisor failure modes a real SDK cannot be made to produce.
 */
export async function startWithHypervisor(client: Client, env: Record<string, string> = {}): Promise<NestFastifyApplication> {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-inproc-'));
  const databaseUrl = e2eDatabase() === 'postgres' ? await postgresDatabaseFor(dir) : `sqlite:${join(dir, 'vmplane.sqlite')}`;
  const config = loadConfig({
    VMPLANE_DEMO: '1',
    JWT_SECRET: TEST_JWT_SECRET,
    SDK_API_KEY: 'unused',
    DATABASE_URL: databaseUrl,
    SDK_STATE_PATH: join(dir, 'hypervisor.sqlite'),
    LOG_LEVEL: 'silent',
    RECONCILE_INTERVAL_MS: '0',
    HYPERVISOR_RETRY_BASE_MS: '1',
    ...env,
  });
  const logger = pino({ level: 'silent' });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] })
    .overrideProvider(HYPERVISOR_CLIENT)
    .useValue(client)
    .setLogger(new PinoNestLogger(logger))
    .compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createAdapter(logger));
  await configureApp(app, config);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
