import pino from 'pino';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_BYTES, FLUSH_INTERVAL_MS, REDACTED, createBufferedLogger, logTime, loggerOptions, redactUrl, requestLogger } from './logger';

describe(redactUrl.name, () => {
  it.each([
    ['/vms', '/vms'],
    ['/vms?limit=5&cursor=abc', '/vms?limit=5&cursor=abc'],
    ['/token?username=bob&password=hunter2', '/token?username=bob&password=[redacted]'],
    ['/vms?access_token=eyJ.x.y&limit=1', '/vms?access_token=[redacted]&limit=1'],
    ['/x?client_secret=s&api_key=k&apikey=k2&X-Auth=a', '/x?client_secret=[redacted]&api_key=[redacted]&apikey=[redacted]&X-Auth=[redacted]'],
    ['/token?p%61ssword=hunter2', '/token?p%61ssword=[redacted]'],
    ['/token?pass+word=x&%E0%A4%A=1', '/token?pass+word=[redacted]&%E0%A4%A=1'],
  ])('%s → %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });
});

describe('log lines', () => {
  /** The lines a logger built with vmplane's options writes, parsed. */
  function logged(write: (logger: pino.Logger) => void): Record<string, unknown>[] {
    const chunks: string[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        chunks.push(chunk.toString());
        done();
      },
    });
    const logger = pino(loggerOptions('info'), sink);
    write(logger);
    return chunks.join('').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('carry no credential at the top level, in a logged object, or in request and response headers', () => {
    const [line] = logged((logger) =>
      logger.info(
        {
          password: 'hunter2',
          access_token: 'eyJ.a.b',
          err: { message: 'bad', token: 't0k' },
          body: { username: 'bob', new_password: 'n3w', current_password: 'old' },
          req: { headers: { authorization: 'Bearer x', cookie: 'c=1', accept: '*/*' } },
          res: { headers: { 'set-cookie': 's=1' } },
          config: { client_secret: 'cs' },
        },
        'with secrets',
      ),
    );
    expect(line).toMatchObject({
      password: REDACTED,
      access_token: REDACTED,
      err: { message: 'bad', token: REDACTED },
      body: { username: 'bob', new_password: REDACTED, current_password: REDACTED },
      req: { headers: { authorization: REDACTED, cookie: REDACTED, accept: '*/*' } },
      res: { headers: { 'set-cookie': REDACTED } },
      config: { client_secret: REDACTED },
    });
    expect(JSON.stringify(line)).not.toMatch(/hunter2|eyJ\.a\.b|t0k|n3w|"old"|Bearer x|c=1|s=1|"cs"/);
  });

  it('leave the access log line as it was given', () => {
    const [line] = logged((logger) => logger.child({ reqId: 'r1' }).info({ method: 'GET', url: '/vms', route: '/vms', status: 200, ms: 1.5 }, 'request'));
    expect(line).toMatchObject({ reqId: 'r1', method: 'GET', url: '/vms', route: '/vms', status: 200, ms: 1.5, msg: 'request', level: 'info', service: 'vmplane' });
  });
});

describe(createBufferedLogger.name, () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vmplane-log-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A real asynchronous pino destination on a file, with every chunk it is handed recorded. */
  async function destination(path: string): Promise<{ stream: ReturnType<typeof pino.destination>; chunks: string[] }> {
    const stream = pino.destination({ dest: path, sync: false, minLength: BATCH_BYTES });
    await once(stream, 'ready');
    const chunks: string[] = [];
    const write = stream.write.bind(stream);
    stream.write = (chunk: string) => {
      chunks.push(chunk);
      return write(chunk);
    };
    return { stream, chunks };
  }

  it('hands the destination whole lines in chunks of at least BATCH_BYTES, and every line arrives on flush', async () => {
    const path = join(dir, 'out.log');
    const { stream, chunks } = await destination(path);
    const { logger, flush } = createBufferedLogger('info', stream);
    for (let i = 0; i < 1000; i++) logger.info({ i, route: '/vms/:id' }, 'request');
    flush();

    const numbers = (text: string) => text.trim().split('\n').map((line) => (JSON.parse(line) as { i: number }).i);
    const all = Array.from({ length: 1000 }, (_, i) => i);
    // Handed over in order; on disk each exactly once (a chunk still being written asynchronously may land after flushSync's).
    expect(numbers(chunks.join(''))).toEqual(all);
    expect(numbers(readFileSync(path, 'utf8')).sort((a, b) => a - b)).toEqual(all);
    expect(chunks.length).toBeLessThan(1000 / 10);
    for (const chunk of chunks.slice(0, -1)) expect(chunk.length).toBeGreaterThanOrEqual(BATCH_BYTES);
    for (const chunk of chunks) expect(chunk.endsWith('\n')).toBe(true);
    stream.destroy();
  });

  it('writes a lone line out within the flush interval, without a flush', async () => {
    const path = join(dir, 'quiet.log');
    const { stream } = await destination(path);
    const { logger } = createBufferedLogger('info', stream);
    logger.info('the last request of a quiet server');
    await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS * 3));
    expect(readFileSync(path, 'utf8')).toContain('the last request of a quiet server');
    stream.destroy();
  });
});

describe(logTime.name, () => {
  afterEach(() => jest.useRealTimers());

  it('is pino isoTime for the current millisecond, also when several lines share one', () => {
    jest.useFakeTimers({ now: Date.UTC(2026, 11, 1, 15, 4, 5, 67) });
    expect(logTime()).toBe(pino.stdTimeFunctions.isoTime());
    expect(logTime()).toBe(',"time":"2026-12-01T15:04:05.067Z"');
    jest.advanceTimersByTime(1);
    expect(logTime()).toBe(',"time":"2026-12-01T15:04:05.068Z"');
    expect(logTime()).toBe(pino.stdTimeFunctions.isoTime());
  });
});

describe('requestLogger', () => {
  const root = pino({ ...loggerOptions('info') }, new Writable({ write: (_chunk, _encoding, done) => done() }));

  it('gives a request the root’s level and its own bindings, without level methods of its own', () => {
    const child = requestLogger.call({} as never, root, { reqId: 'r1' }, { level: 'info' }, {} as never) as pino.Logger;
    expect(child.bindings()).toEqual({ service: 'vmplane', reqId: 'r1' });
    expect(child.level).toBe('info');
    expect(Object.prototype.hasOwnProperty.call(child, 'info')).toBe(false);
  });

  it('honours a route that asks for another level or its own serializers', () => {
    const quieter = requestLogger.call({} as never, root, { reqId: 'r2' }, { level: 'warn' }, {} as never) as pino.Logger;
    expect(quieter.level).toBe('warn');
    expect(quieter.isLevelEnabled('info')).toBe(false);
    expect(root.isLevelEnabled('info')).toBe(true);
  });
});
