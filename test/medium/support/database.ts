import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Clock } from '../../../src/common/clock';
import { dataSourceOptions } from '../../../src/database/data-source-options';
import { TimestampSubscriber } from '../../../src/database/timestamp.subscriber';
import { Tx, UnitOfWork } from '../../../src/database/unit-of-work';
import { createTestDatabase, postgresAvailable } from '../../support/postgres';

export type DbKind = 'sqlite' | 'postgres';

/**
 * The databases every medium suite runs on: SQLite always, PostgreSQL when
 * the global setup found a server (VMPLANE_TEST_POSTGRES=1). Use as
 * `describe.each(DB_KINDS)('… on %s', (kind) => …)`; the kind is in the name.
 */
export const DB_KINDS: DbKind[] = postgresAvailable() ? ['sqlite', 'postgres'] : ['sqlite'];

/**
 * Makes a missing PostgreSQL visible in the jest summary (as a skipped test)
 * rather than only in the global setup's banner.
 */
export function reportSkippedPostgres(suite: string): void {
  if (!postgresAvailable()) {
    describe(`${suite} on postgres`, () => {
      it.skip('SKIPPED: PostgreSQL is not reachable (set REQUIRE_POSTGRES=1 to make this a failure)', () => undefined);
    });
  }
}

export interface TestDatabase {
  kind: DbKind;
  dataSource: DataSource;
  uow: UnitOfWork;
  /** The time the timestamp columns are stamped with; tests move it. */
  clock: TestClock;
  /** Deletes every row (children first), keeping the schema, and puts the clock back to its start. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Run the migrations (default true). */
  migrate?: boolean;
}

/** Where a TestClock starts, and where reset() puts it back: a fixed instant with a non-zero millisecond part. */
const CLOCK_START = new Date('2031-03-04T05:06:07.089Z');

/** A clock tests set and move. */
export class TestClock extends Clock {
  constructor(private current = CLOCK_START) {
    super();
  }

  now(): Date {
    return new Date(this.current.getTime());
  }

  set(at: Date): void {
    this.current = new Date(at.getTime());
  }

  advance(ms: number): Date {
    this.current = new Date(this.current.getTime() + ms);
    return this.now();
  }
}

/**
 * SQL for test setup and assertions only (feature code goes through the
 * repositories): written once with $1-style placeholders, bound as each
 * driver wants them.
 */
export async function rows<T = Record<string, unknown>>(tx: Tx, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await tx.query(...bind(tx, sql, params))) as T[];
}

export async function one<T = Record<string, unknown>>(tx: Tx, sql: string, params: unknown[] = []): Promise<T | undefined> {
  return (await rows<T>(tx, sql, params))[0];
}

/** Runs a write and returns how many rows it changed. */
export async function run(tx: Tx, sql: string, params: unknown[] = []): Promise<number> {
  const [text, values] = bind(tx, sql, params);
  const runner = tx.queryRunner ?? tx.connection.createQueryRunner();
  try {
    return (await runner.query(text, values, true)).affected ?? 0;
  } finally {
    if (runner !== tx.queryRunner) await runner.release();
  }
}

function bind(tx: Tx, sql: string, params: unknown[]): [string, unknown[]] {
  if (tx.connection.options.type === 'postgres') return [sql, params];
  const values: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    const value = params[Number(n) - 1];
    values.push(value instanceof Date ? sqliteTime(value) : typeof value === 'boolean' ? Number(value) : value);
    return '?';
  });
  return [text, values];
}

/** A timestamp as the SQLite schema stores it (TypeORM's UTC datetime text). */
export function sqliteTime(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** Children before parents, so deleting in this order never trips a foreign key. */
const TABLES_CHILD_FIRST = [
  'ssh_keys',
  'images',
  'idempotency_keys',
  'operations',
  'gpu_slot_claims',
  'gpu_allocations',
  'gpus',
  'vm_labels',
  'vms',
  'hosts',
  'users',
  'reconciliation_runs',
];

/**
 * A real, empty database of the given kind with the real migrations applied:
 * SQLite in a file in a fresh temporary folder (WAL, foreign keys on, exactly
 * as the server opens it), PostgreSQL in a throwaway database that close() drops.
 */
export async function openTestDatabase(kind: DbKind, options: OpenOptions = {}): Promise<TestDatabase> {
  let cleanup: () => Promise<void>;
  let dataSource: DataSource;
  if (kind === 'postgres') {
    const db = await createTestDatabase('vmplane_medium');
    dataSource = new DataSource(dataSourceOptions({ kind: 'postgres', url: db.url }));
    cleanup = db.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'vmplane-medium-'));
    dataSource = new DataSource(dataSourceOptions({ kind: 'sqlite', path: join(dir, 'vmplane.sqlite') }));
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  try {
    await dataSource.initialize();
    if (options.migrate !== false) await dataSource.runMigrations();
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await cleanup();
    throw error;
  }
  const clock = new TestClock();
  new TimestampSubscriber(dataSource, clock);
  const uow = new UnitOfWork(dataSource);
  return {
    kind,
    dataSource,
    uow,
    clock,
    reset: async () => {
      clock.set(CLOCK_START);
      await uow.transaction(async (tx) => {
        for (const table of TABLES_CHILD_FIRST) await tx.query(`DELETE FROM ${table}`);
      });
    },
    close: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await cleanup();
    },
  };
}

/**
 * Opens one database for the enclosing describe block (migrated once in
 * beforeAll), empties it before each test, and closes it in afterAll. Returns
 * a getter because the database exists only once beforeAll has run.
 */
export function useTestDatabase(kind: DbKind): () => TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await openTestDatabase(kind);
  }, 30_000);
  beforeEach(async () => {
    await db!.reset();
  });
  afterAll(async () => {
    await db?.close();
  });
  return () => {
    if (!db) throw new Error('the test database is not open yet (use it inside tests or hooks)');
    return db;
  };
}

/** Runs `work` and returns the error it throws (failing the test if it does not throw). */
export async function errorOf(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

/** Reads one integer column of one row (COUNT(*) and friends come back as strings from pg). */
export async function scalar(tx: Tx, sql: string, params: unknown[] = []): Promise<number> {
  const row = await one(tx, sql, params);
  if (!row) throw new Error(`no row from: ${sql}`);
  return Number(Object.values(row)[0]);
}

/** A promise plus its resolve function, for choreographing concurrent transactions. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A timer that does not keep the process (and jest) alive once the test is over. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
