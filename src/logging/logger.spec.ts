import pino from 'pino';
import { Writable } from 'node:stream';
import { REDACTED, loggerOptions, redactUrl } from './logger';

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
