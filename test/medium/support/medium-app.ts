import { INestApplicationContext, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Client } from '@vmplane/sdk';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DataSource } from 'typeorm';
import { AppModule } from '../../../src/app.module';
import { Clock } from '../../../src/common/clock';
import { RandomSource } from '../../../src/common/random-source';
import { loadConfig } from '../../../src/config/app-config';
import { UnitOfWork } from '../../../src/database/unit-of-work';
import { HYPERVISOR_CLIENT } from '../../../src/hypervisor/hypervisor.constants';
import { PinoNestLogger } from '../../../src/logging/logger';
import { createTestDatabase } from '../../support/postgres';
import { DbKind, TestClock } from './database';

/** Randomness that tests fix: the scheduler's tie-breaks and retry jitter. */
class FixedRandom extends RandomSource {
  next(): number {
    return 0.5;
  }
}

export interface MediumApp {
  kind: DbKind;
  /** Any provider of the application: services with their real repositories. */
  get<T>(type: Type<T> | string | symbol): T;
  uow: UnitOfWork;
  dataSource: DataSource;
  clock: TestClock;
  /** The hypervisor SDK: the simulator with its state in memory, reached only through its public API. */
  hypervisor: Client;
  close(): Promise<void>;
}

/**
 * The application's modules without HTTP, on a real database of `kind` with
 * the real migrations, the in-memory SDK client, a test clock and fixed
 * randomness: any service is built with its real repositories, as immich's
 * newMediumService does. Workers run; the reconciler runs only when asked
 * (its start-up pass finds an empty hypervisor).
 */
export async function newMediumApp(kind: DbKind, env: Record<string, string> = {}): Promise<MediumApp> {
  const dir = mkdtempSync(join(tmpdir(), 'vmplane-medium-app-'));
  const pg = kind === 'postgres' ? await createTestDatabase('vmplane_medium') : null;
  const config = loadConfig({
    JWT_SECRET: 'medium-test-signing-key-0123456789abcdef',
    SDK_API_KEY: 'medium-test-key',
    DATABASE_URL: pg?.url ?? `sqlite:${join(dir, 'vmplane.sqlite')}`,
    SDK_STATE_PATH: ':memory:',
    SDK_FAILURE_RATE: '0',
    LOG_LEVEL: 'silent',
    RECONCILE_INTERVAL_MS: '0',
    HYPERVISOR_RETRY_BASE_MS: '0',
    OPERATION_POLL_MS: '50',
    ...env,
  });
  const clock = new TestClock(new Date());
  const hypervisor = new Client(config.sdkApiKey, { statePath: ':memory:', failureRate: 0 });
  const moduleRef = await Test.createTestingModule({ imports: [AppModule.forRoot(config)] })
    .overrideProvider(HYPERVISOR_CLIENT)
    .useValue(hypervisor)
    .overrideProvider(Clock)
    .useValue(clock)
    .overrideProvider(RandomSource)
    .useValue(new FixedRandom())
    .setLogger(new PinoNestLogger(pino({ level: 'silent' })))
    .compile();
  const app: INestApplicationContext = await moduleRef.init();
  return {
    kind,
    get: <T>(type: Type<T> | string | symbol) => app.get<T>(type as Type<T>),
    uow: app.get(UnitOfWork),
    dataSource: app.get(DataSource),
    clock,
    hypervisor,
    close: async () => {
      await app.close();
      await pg?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
