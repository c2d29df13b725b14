import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { GpuEntity } from '../fleet/gpu.entity';
import { HostEntity } from '../fleet/host.entity';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity';
import { InstallationEntity } from '../installation/installation.entity';
import { OperationEntity } from '../operations/operation.entity';
import { ReconciliationRunEntity } from '../reconciler/reconciliation-run.entity';
import { UserEntity } from '../users/user.entity';
import { VmLabelEntity } from '../vms/vm-label.entity';
import { VmEntity } from '../vms/vm.entity';
import { UsageEventEntity } from '../vms/usage-event.entity';
import { InitialSchema1764190000000 } from './migrations/1764190000000-initial-schema';
import { VmRegionOneOpenOperation1764950000000 } from './migrations/1764950000000-vm-region-one-open-operation';
import { InstallationAndHostUri1765000000000 } from './migrations/1765000000000-installation-and-host-uri';
import { UserStatus1765100000000 } from './migrations/1765100000000-user-status';
import { Lifecycle1765200000000 } from './migrations/1765200000000-lifecycle';
import { ImagesSshKeysUserData1765300000000 } from './migrations/1765300000000-images-ssh-keys-user-data';
import { HostAdmin1765350000000 } from './migrations/1765350000000-host-admin';
import { FractionalGpus1765400000000 } from './migrations/1765400000000-fractional-gpus';
import { HostReachability1765500000000 } from './migrations/1765500000000-host-reachability';
import { UsageGpuMilli1765600000000 } from './migrations/1765600000000-usage-gpu-milli';
import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import { ImageEntity } from '../images/image.entity';
import { SshKeyEntity } from '../ssh-keys/ssh-key.entity';
import { WRITER_AUTOCHECKPOINT_FRAMES } from './sqlite-checkpointer';

export const ENTITIES = [
  UserEntity,
  HostEntity,
  GpuEntity,
  GpuAllocationEntity,
  GpuSlotClaimEntity,
  VmEntity,
  VmLabelEntity,
  OperationEntity,
  IdempotencyKeyEntity,
  ReconciliationRunEntity,
  InstallationEntity,
  UsageEventEntity,
  ImageEntity,
  SshKeyEntity,
];

export const MIGRATIONS = [InitialSchema1764190000000, VmRegionOneOpenOperation1764950000000, InstallationAndHostUri1765000000000, UserStatus1765100000000, Lifecycle1765200000000, ImagesSshKeysUserData1765300000000, HostAdmin1765350000000, FractionalGpus1765400000000, HostReachability1765500000000, UsageGpuMilli1765600000000];

/** TypeORM options for either database. Migrations are run by MigrationRunner, never synchronize. */
export function dataSourceOptions(db: DatabaseConfig): DataSourceOptions {
  const common = { entities: ENTITIES, migrations: MIGRATIONS, migrationsRun: false, synchronize: false, logging: false };
  if (db.kind === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: db.url,
      applicationName: 'vmplane',
      // pipeline: statements a unit starts together leave together (statements-together.ts).
      extra: { max: 20, options: '-c timezone=UTC', pipeline: true },
    };
  }
  if (db.path !== ':memory:') {
    try {
      mkdirSync(dirname(db.path), { recursive: true });
    } catch (error) {
      throw new DatabaseUnavailableError(`cannot create the folder of the SQLite database ${db.path}: ${(error as Error).message}. Check DATABASE_URL.`);
    }
  }
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
      connection.pragma('temp_store = MEMORY');
      // The log is copied into the file on a thread of its own; this only restarts it (sqlite-checkpointer.ts).
      connection.pragma(`wal_autocheckpoint = ${WRITER_AUTOCHECKPOINT_FRAMES}`);
    },
  };
}

/** How long the first connection may take before the start fails (a server that drops packets would hang for minutes). */
const CONNECT_TIMEOUT_MS = 10_000;

/** The database cannot be opened at start: an operator's mistake or an outage, reported in one line. */
export class DatabaseUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUnavailableError';
    // Nest logs what fails its start with the stack; here the message is the whole story.
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * Opens the data source once. A database that cannot be opened fails the start at once,
 * naming it, instead of TypeOrmModule's default of 9 retries 3 s apart with a stack trace each.
 */
export async function openDataSource(options: DataSourceOptions): Promise<DataSource> {
  const dataSource = new DataSource(options);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([dataSource.initialize(), timeout]);
  } catch (error) {
    throw new DatabaseUnavailableError(`cannot open the ${describeDatabase(options)}: ${reasonOf(error)}. ${adviceFor(options, error)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** The database as an operator names it, never with the password. */
function describeDatabase(options: DataSourceOptions): string {
  if (options.type !== 'postgres') return `SQLite database ${String(options.database)}`;
  const url = new URL(options.url ?? 'postgres://localhost');
  const name = decodeURIComponent(url.pathname.slice(1)) || '(default)';
  const user = url.username ? ` as ${decodeURIComponent(url.username)}` : '';
  return `PostgreSQL database "${name}" at ${url.hostname || 'localhost'}:${url.port || 5432}${user}`;
}

/** What to do next: a PostgreSQL database that does not exist yet is created by its operator (vmplane never creates databases). */
function adviceFor(options: DataSourceOptions, error: unknown): string {
  if (options.type !== 'postgres' || (error as { code?: string })?.code !== '3D000') return 'Check DATABASE_URL.';
  const url = new URL(options.url ?? 'postgres://localhost');
  const user = url.username ? ` -U ${decodeURIComponent(url.username)}` : '';
  return `Create it (createdb -h ${url.hostname || 'localhost'} -p ${url.port || 5432}${user} ${decodeURIComponent(url.pathname.slice(1))}) or check DATABASE_URL.`;
}

function reasonOf(error: unknown): string {
  // Several addresses (localhost is ::1 and 127.0.0.1) fail as one AggregateError without a message.
  if (error instanceof AggregateError && error.errors.length > 0) return [...new Set(error.errors.map(reasonOf))].join('; ');
  if (error instanceof Error) return error.message || (error as { code?: string }).code || error.name;
  return String(error);
}
