import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The PostgreSQL server tests use; override with TEST_POSTGRES_URL (a URL to an admin database). */
export const ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function postgresReachable(): Promise<string | null> {
  const client = new Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether the PostgreSQL suites run; decided once by the global setup. */
export function postgresAvailable(): boolean {
  return process.env.VMPLANE_TEST_POSTGRES === '1';
}

/**
 * `describe` for suites that always run on PostgreSQL; skipped (and reported
 * by the global setup) without it, and not repeated by the e2e-postgres project.
 */
export function describePostgres(name: string, body: () => void): void {
  const repeat = process.env.VMPLANE_E2E_DB === 'postgres';
  (postgresAvailable() && !repeat ? describe : describe.skip)(name, body);
}

/** Creates a fresh database and returns its URL and a function that drops it. */
export async function createTestDatabase(prefix = 'vmplane_test'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}
