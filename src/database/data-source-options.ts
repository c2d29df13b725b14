import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { GpuEntity } from '../fleet/gpu.entity';
import { HostEntity } from '../fleet/host.entity';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity';
import { OperationEntity } from '../operations/operation.entity';
import { ReconciliationRunEntity } from '../reconciler/reconciliation-run.entity';
import { UserEntity } from '../users/user.entity';
import { VmLabelEntity } from '../vms/vm-label.entity';
import { VmEntity } from '../vms/vm.entity';
import { InitialSchema1764190000000 } from './migrations/1764190000000-initial-schema';
import { VmRegionOneOpenOperation1764950000000 } from './migrations/1764950000000-vm-region-one-open-operation';

export const ENTITIES = [
  UserEntity,
  HostEntity,
  GpuEntity,
  GpuAllocationEntity,
  VmEntity,
  VmLabelEntity,
  OperationEntity,
  IdempotencyKeyEntity,
  ReconciliationRunEntity,
];

export const MIGRATIONS = [InitialSchema1764190000000, VmRegionOneOpenOperation1764950000000];

/** TypeORM options for either database. Migrations are run by MigrationRunner, never synchronize. */
export function dataSourceOptions(db: DatabaseConfig): DataSourceOptions {
  const common = { entities: ENTITIES, migrations: MIGRATIONS, migrationsRun: false, synchronize: false, logging: false };
  if (db.kind === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: db.url,
      applicationName: 'vmplane',
      extra: { max: 20, options: '-c timezone=UTC' },
    };
  }
  if (db.path !== ':memory:') mkdirSync(dirname(db.path), { recursive: true });
  return {
    ...common,
    type: 'better-sqlite3',
    database: db.path,
    statementCacheSize: 500,
    prepareDatabase: (connection: { pragma(source: string): unknown }) => {
      connection.pragma('journal_mode = WAL');
      // NORMAL is durable in WAL mode except for the last transactions on power loss, not on a process crash.
      connection.pragma('synchronous = NORMAL');
      connection.pragma('busy_timeout = 5000');
      connection.pragma('foreign_keys = ON');
    },
  };
}
