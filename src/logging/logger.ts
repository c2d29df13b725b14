import { LoggerService } from '@nestjs/common';
import pino, { Logger, LoggerOptions } from 'pino';

/**
 * Structured JSON logs. Writes are asynchronous and buffered so logging never
 * blocks the event loop on a slow stdout; the buffer is written out at least
 * every FLUSH_INTERVAL_MS (a quiet server's last request must not wait for
 * 4 KiB of company) and on exit.
 */
export interface AppLogger {
  logger: Logger;
  /** Writes out whatever is buffered; call before the process exits. */
  flush(): void;
}

export function createLogger(level: string): Logger {
  return createAppLogger(level).logger;
}

export const FLUSH_INTERVAL_MS = 250;

export const REDACTED = '[redacted]';

/** Credentials and tokens, at the top level of a log line or one level down in an object the code logs (err, req, body...). */
const SECRET_FIELDS = ['password', 'new_password', 'current_password', 'access_token', 'refresh_token', 'token', 'client_secret', 'authorization', 'cookie'];
/**
 * The keys under which code logs objects that may carry a secret. They are
 * named rather than matched with `*.field`: pino runs a wildcard-first path
 * over every value of every line, the access log included, and that was
 * a large share of `GET /vms/{id}`'s CPU (docs/benchmarks.md). A named key costs only the
 * lines that carry it.
 */
const LOGGED_OBJECTS = ['err', 'error', 'req', 'request', 'res', 'response', 'body', 'headers', 'params', 'query', 'data', 'user', 'config', 'options', 'payload'];
const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...LOGGED_OBJECTS.flatMap((object) => SECRET_FIELDS.map((field) => `${object}.${field}`)),
  ...['authorization', 'cookie', 'set-cookie'].flatMap((header) => [`req.headers["${header}"]`, `headers["${header}"]`, `res.headers["${header}"]`]),
];

/** Query parameter names whose values are never logged. */
const SECRET_PARAMETER = /pass|secret|token|auth|cookie|session|signature|credential|api.?key/i;

/** The URL as it may be logged: the value of any parameter that looks like a credential is replaced. */
export function redactUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const pairs = url.slice(query + 1).split('&');
  for (let i = 0; i < pairs.length; i++) {
    const equals = pairs[i].indexOf('=');
    if (equals !== -1 && SECRET_PARAMETER.test(decodeName(pairs[i].slice(0, equals)))) {
      pairs[i] = `${pairs[i].slice(0, equals)}=${REDACTED}`;
    }
  }
  return `${url.slice(0, query)}?${pairs.join('&')}`;
}

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** What every vmplane logger is built with: JSON lines, ISO times, secrets redacted. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'vmplane' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
  };
}

export function createAppLogger(level: string): AppLogger {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const logger = pino(loggerOptions(level), destination);
  const flush = () => {
    try {
      destination.flushSync();
    } catch {
      /* stdout may already be closed */
    }
  };
  // A write that fails (stdout closed) is reported, not thrown: logging must not take the server down.
  destination.on('error', (error: Error) => process.stderr.write(`vmplane: log write failed: ${error.message}\n`));
  // The first line written after a flush schedules the next one, so an idle server sets no timers.
  const write = destination.write.bind(destination);
  let scheduled: NodeJS.Timeout | null = null;
  destination.write = (chunk: string): boolean => {
    const accepted = write(chunk);
    if (!scheduled) {
      scheduled = setTimeout(() => {
        scheduled = null;
        // No callback: with one, sonic-boom also fsyncs, which a pipe or a terminal refuses (EINVAL).
        destination.flush();
      }, FLUSH_INTERVAL_MS);
      scheduled.unref();
    }
    return accepted;
  };
  process.once('beforeExit', flush);
  process.once('exit', flush);
  return { logger, flush };
}

/** Nest's logger interface over pino, so framework and app logs share one format. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal', message: unknown, params: unknown[]): void {
    // Nest passes the context (class name) last; an error's stack may come before it.
    const context = params.length > 0 && typeof params[params.length - 1] === 'string' ? (params.pop() as string) : undefined;
    if (message !== null && typeof message === 'object' && !(message instanceof Error)) {
      const text = typeof params[0] === 'string' ? params[0] : undefined;
      this.logger[level]({ context, ...(message as object) }, text);
    } else if (message instanceof Error) {
      this.logger[level]({ context, err: message }, message.message);
    } else {
      const stack = typeof params[0] === 'string' && params[0].includes('\n    at ') ? params[0] : undefined;
      this.logger[level]({ context, ...(stack ? { stack } : {}) }, String(message));
    }
  }
}
