import Database from 'better-sqlite3';
import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client } from 'pg';
import { createTestDatabase } from './postgres';

export const ROOT = join(__dirname, '..', '..');

/**
 * Which database e2e servers use unless a test says otherwise: the e2e tier
 * runs once on SQLite and once more (project e2e-postgres) on PostgreSQL.
 */
export function e2eDatabase(): 'sqlite' | 'postgres' {
  return process.env.VMPLANE_E2E_DB === 'postgres' ? 'postgres' : 'sqlite';
}

/** One PostgreSQL database per data folder, so a server restarted on the same folder finds its data. */
const databasesByDir = new Map<string, { url: string; drop: () => Promise<void> }>();

/** The PostgreSQL database that belongs to a data folder, created on first use and dropped by dropCreatedDatabases(). */
export async function postgresDatabaseFor(dataDir: string): Promise<string> {
  let db = databasesByDir.get(dataDir);
  if (!db) {
    db = await createTestDatabase();
    databasesByDir.set(dataDir, db);
  }
  return db.url;
}

/** Drops the databases this test file created (registered by test/support/e2e-postgres.ts). */
export async function dropCreatedDatabases(): Promise<void> {
  const all = [...databasesByDir.values()];
  databasesByDir.clear();
  await Promise.all(all.map((db) => db.drop().catch(() => undefined)));
}
export const TEST_JWT_SECRET = 'test-only-signing-key-0123456789abcdef';

export interface ServerOptions {
  /** A postgres:// URL; SQLite in a fresh temporary folder when absent. */
  databaseUrl?: string;
  /** Extra environment; `undefined` values remove a variable. */
  env?: Record<string, string | undefined>;
  /** Shares state with another server (same SQLite files / hypervisor state). */
  dataDir?: string;
  port?: number;
}

export interface ServerHandle {
  url: string;
  port: number;
  dataDir: string;
  hypervisorStatePath: string;
  databaseUrl: string;
  process: ChildProcess;
  logFile: string;
  /** Graceful stop (SIGTERM), waiting for exit. */
  stop(): Promise<number | null>;
  /** kill -9, waiting for exit. */
  kill(): Promise<void>;
  /** Runs a read-only query against the server's own database (SQLite file or PostgreSQL). */
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Writes to the server's own database behind its back: for records the API would refuse today. */
  execute(sql: string, params?: unknown[]): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The environment a test server starts with: demo users, no injected failures, quiet logs. */
export function serverEnv(options: ServerOptions, port: number, dataDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    VMPLANE_DEMO: '1',
    PORT: String(port),
    HOST: '127.0.0.1',
    JWT_SECRET: TEST_JWT_SECRET,
    SDK_API_KEY: 'test-sdk-key',
    SDK_FAILURE_RATE: '0',
    SDK_STATE_PATH: join(dataDir, 'hypervisor.sqlite'),
    DATABASE_URL: options.databaseUrl ?? `sqlite:${join(dataDir, 'vmplane.sqlite')}`,
    LOG_LEVEL: 'warn',
    RECONCILE_INTERVAL_MS: '0',
  };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts `node dist/src/main.js` (built by the global setup) and waits until /health answers. */
export async function startServer(options: ServerOptions = {}): Promise<ServerHandle> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'vmplane-e2e-'));
  const databaseUrl = options.databaseUrl ?? (e2eDatabase() === 'postgres' ? await postgresDatabaseFor(dataDir) : undefined);
  const env = serverEnv({ ...options, databaseUrl }, port, dataDir);
  const logFile = join(dataDir, `server-${port}-${Date.now()}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'main.js')], { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  // Not ended by either pipe: the log file is complete only once both have closed, which can
  // be after 'exit' ('close' waits for them), and once the file stream has written it all.
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => log.end(() => resolve(code))));
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30_000;
  let ready = false;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) {
        ready = true;
        break;
      }
    } catch {
      /* not listening yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (!ready) {
    child.kill('SIGKILL');
    throw new Error(`server did not start (exit ${child.exitCode}); log: ${logFile}`);
  }
  return {
    url,
    port,
    dataDir,
    hypervisorStatePath: env.SDK_STATE_PATH!,
    databaseUrl: env.DATABASE_URL!,
    process: child,
    logFile,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
    query: (sql, params = []) => queryDatabase(env.DATABASE_URL!, sql, params),
    execute: async (sql, params = []) => {
      await queryDatabase(env.DATABASE_URL!, sql, params, { write: true });
    },
  };
}

/** `sql` uses $1-style placeholders on both databases. */
export async function queryDatabase<T>(databaseUrl: string, sql: string, params: unknown[] = [], options: { write?: boolean } = {}): Promise<T[]> {
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new Database(databaseUrl.slice('sqlite:'.length), { readonly: !options.write, timeout: 5000 });
    try {
      const order: unknown[] = [];
      const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
        order.push(params[Number(n) - 1]);
        return '?';
      });
      const statement = db.prepare(text);
      if (statement.reader) return statement.all(...order) as T[];
      statement.run(...order);
      return [];
    } finally {
      db.close();
    }
  }
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Runs the server to completion (for start-up failures) and returns its exit code and output. */
export function runServerToExit(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
    for (const [key, value] of Object.entries(env)) if (value !== undefined) clean[key] = value;
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'main.js')], { env: clean, cwd: ROOT });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    // 'close', not 'exit': the output may still be arriving when the process has exited.
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
