/**
 * Issue 12 §4 and issue 15 §4: a request's log line appears within about a
 * second on a quiet server (it used to wait for SIGTERM), and credentials and
 * tokens never reach the log, wherever the client put them.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { bearer, login } from '../support/api';
import { ServerHandle, e2eDatabase, startServer } from '../support/server-process';

const logLines = (server: ServerHandle) =>
  readFileSync(server.logFile, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

async function waitForLine(server: ServerHandle, requestId: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (readFileSync(server.logFile, 'utf8').includes(`"reqId":"${requestId}"`)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no log line for ${requestId} within ${timeoutMs} ms`);
}

describe('the request log', () => {
  let server: ServerHandle;

  beforeAll(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'info' } });
  });
  afterAll(() => server?.stop());

  it('shows a single request on a quiet server within a second of its answer', async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // The start-up line says what the server runs on.
    expect(logLines(server).find((line) => String(line.msg).startsWith('vmplane listening'))).toMatchObject({ database: e2eDatabase(), hypervisor: 'simulator' });
    const delays: number[] = [];
    for (const id of ['quiet-1', 'quiet-2', 'quiet-3']) {
      await request(server.url).get('/health').set('X-Request-Id', id).expect(200);
      delays.push(await waitForLine(server, id, 5000));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    process.stdout.write(`log line after the response: ${delays.join(', ')} ms\n`);
    for (const delay of delays) expect(delay).toBeLessThan(1000);
    // Its stdout is a pipe, as under a supervisor or `npm start | tee`: flushing must not complain about it.
    expect(readFileSync(server.logFile, 'utf8')).not.toMatch(/log (flush|write) failed/);
  });

  it('never writes credentials or tokens, in the query, the headers or the body', async () => {
    const token = await login(server.url);
    const signature = token.split('.')[2];
    await request(server.url).get('/token?username=testuser&password=Query-S3cret-1').set('X-Request-Id', 'redact-1');
    await request(server.url).get(`/vms?access_token=${token}&limit=1`).set('X-Request-Id', 'redact-2');
    await request(server.url).get('/vms').set(bearer(token)).set('Cookie', 'session=Cookie-S3cret-2').set('X-Request-Id', 'redact-3');
    await request(server.url).post('/token').type('form').send({ username: 'testuser', password: 'Body-S3cret-3', client_secret: 'Body-S3cret-4' }).set('X-Request-Id', 'redact-4');
    await request(server.url).post('/token').send({ username: 'testuser', password: ['Body-S3cret-5'] }).set('X-Request-Id', 'redact-5');
    await waitForLine(server, 'redact-5', 5000);

    const text = readFileSync(server.logFile, 'utf8');
    for (const secret of ['Query-S3cret-1', signature, 'Cookie-S3cret-2', 'Body-S3cret-3', 'Body-S3cret-4', 'Body-S3cret-5']) expect(text).not.toContain(secret);
    const byId = (id: string) => logLines(server).find((line) => line.reqId === id && line.msg === 'request');
    expect(byId('redact-1')).toMatchObject({ url: '/token?username=testuser&password=[redacted]', status: 405 });
    expect(byId('redact-2')).toMatchObject({ url: '/vms?access_token=[redacted]&limit=1' });
  });
});
