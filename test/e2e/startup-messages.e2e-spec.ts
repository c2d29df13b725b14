/**
 * What a production start tells its operator: what is still missing for a first VM, and,
 * when the database cannot be opened, which one and why, in one line and at once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_URL, describePostgres } from '../support/postgres';
import { ROOT, TEST_JWT_SECRET, freePort, runServerToExit, startServer } from '../support/server-process';

interface LogLine {
  level: string;
  context?: string;
  msg: string;
}

function logLines(text: string): LogLine[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

const NO_USERS = /^No users yet, so nobody can sign in: set ADMIN_USERNAME and ADMIN_PASSWORD and restart/;
const NO_HOSTS = /^No hosts yet, so no VM can be placed: register them with POST \/hosts or POST \/hosts\/import .*FLEET_FILE/;

describe('start-up messages about what is missing', () => {
  /** The start-up warnings of a production server (no VMPLANE_DEMO) that starts and stops on dataDir. */
  async function startupWarnings(dataDir: string, env: Record<string, string> = {}): Promise<string[]> {
    const server = await startServer({ dataDir, env: { VMPLANE_DEMO: undefined, ...env } });
    await server.stop();
    return logLines(readFileSync(server.logFile, 'utf8'))
      .filter((line) => line.level === 'warn' && line.context === 'Startup')
      .map((line) => line.msg);
  }

  it('says how to add the first user and the first hosts, one line each, while there are none', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'vmplane-startup-'));
    const empty = await startupWarnings(dataDir);
    expect(empty).toHaveLength(2);
    expect(empty).toEqual(expect.arrayContaining([expect.stringMatching(NO_USERS), expect.stringMatching(NO_HOSTS)]));

    const withAdmin = await startupWarnings(dataDir, { ADMIN_USERNAME: 'root', ADMIN_PASSWORD: 'a-long-admin-password' });
    expect(withAdmin).toEqual([expect.stringMatching(NO_HOSTS)]);

    // Without ADMIN_USERNAME this time: the admin is in the database now.
    expect(await startupWarnings(dataDir, { FLEET_FILE: join(ROOT, 'fleet', 'demo-fleet.json') })).toEqual([]);
  });

  it('says nothing of the kind in demo mode', async () => {
    const server = await startServer();
    await server.stop();
    const messages = logLines(readFileSync(server.logFile, 'utf8')).map((line) => line.msg);
    expect(messages.filter((msg) => NO_USERS.test(msg) || NO_HOSTS.test(msg))).toEqual([]);
  });
});

/** Runs vmplane in production mode on databaseUrl, to its exit, with warnings and errors only. */
async function startOn(databaseUrl: string): Promise<{ code: number | null; lines: string[]; seconds: number }> {
  const started = Date.now();
  const { code, output } = await runServerToExit({
    DATABASE_URL: databaseUrl,
    JWT_SECRET: TEST_JWT_SECRET,
    SDK_API_KEY: 'test-sdk-key',
    SDK_STATE_PATH: ':memory:',
    PORT: '0',
    LOG_LEVEL: 'warn',
  });
  return { code, lines: output.trim().split('\n'), seconds: (Date.now() - started) / 1000 };
}

/** One error line that names the database, no stack frames, well before TypeOrmModule's ~27 s of retries. */
function expectOneLineFailure(result: { code: number | null; lines: string[]; seconds: number }, text: RegExp): void {
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  expect(result.lines).toHaveLength(1);
  const [line] = logLines(result.lines[0]);
  expect(line).toMatchObject({ level: 'error', msg: expect.stringMatching(text) });
  expect(result.lines[0]).not.toMatch(/\.[jt]s:\d+:\d+/);
  expect(result.lines[0]).not.toMatch(/Retrying/);
}

// The server is started by hand here, so the e2e-postgres project need not run these again.
const once = process.env.VMPLANE_E2E_DB === 'postgres' ? describe.skip : describe;

once('a database that cannot be opened stops the start at once, in one line naming it', () => {
  it('a PostgreSQL server that refuses the connection', async () => {
    const port = await freePort();
    const result = await startOn(`postgres://vmplane:secret-password@127.0.0.1:${port}/vmplane_prod`);
    expectOneLineFailure(result, new RegExp(`^cannot open the PostgreSQL database "vmplane_prod" at 127\\.0\\.0\\.1:${port} as vmplane: connect ECONNREFUSED`));
    expect(result.lines[0]).not.toContain('secret-password');
    expect(result.seconds).toBeLessThan(10);
  });

  it('a PostgreSQL server that accepts the connection and never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as { port: number };
      const result = await startOn(`postgres://postgres@127.0.0.1:${port}/vmplane`);
      expectOneLineFailure(result, /^cannot open the PostgreSQL database "vmplane" at .*: no answer within 10 s\. Check DATABASE_URL\.$/);
      expect(result.seconds).toBeLessThan(18);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  }, 30_000);

  it('a SQLite path whose folder cannot be made', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vmplane-startup-')), 'a-file');
    writeFileSync(file, '');
    expectOneLineFailure(await startOn(`sqlite:${file}/vmplane.sqlite`), /^cannot create the folder of the SQLite database .*a-file\/vmplane\.sqlite: EEXIST/);
  });
});

describePostgres('a PostgreSQL database that does not exist', () => {
  it('stops the start at once, in one line naming it', async () => {
    const url = new URL(ADMIN_URL);
    const name = `vmplane_missing_${randomBytes(4).toString('hex')}`;
    url.pathname = `/${name}`;
    const result = await startOn(url.toString());
    expectOneLineFailure(result, new RegExp(`^cannot open the PostgreSQL database "${name}" at .*: database "${name}" does not exist\\. Create it \\(createdb -h \\S+ -p \\d+ -U \\S+ ${name}\\) or check DATABASE_URL\\.$`));
    expect(result.seconds).toBeLessThan(10);
  });
});
