import { LoggerService } from '@nestjs/common';
import pino, { Logger, LoggerOptions } from 'pino';
import type { FastifyChildLoggerFactory } from 'fastify/types/logger';
import { isoTime } from '../common/iso-time';

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
    timestamp: logTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
  };
}

export function createAppLogger(level: string): AppLogger {
  return createBufferedLogger(level, pino.destination({ dest: 1, sync: false, minLength: BATCH_BYTES }));
}

/** pino's own asynchronous destination (sonic-boom). */
type LogDestination = ReturnType<typeof pino.destination>;

/** Lines are handed to the destination in chunks of at least this many characters (and on every flush). */
export const BATCH_BYTES = 4096;

/**
 * A logger over `destination`, with lines gathered into chunks before the
 * destination sees them. sonic-boom appends each line to its last buffered
 * string and measures that string's UTF-8 length on every write, which
 * flattens it: with 4 KiB buffered that was a third of each access-log
 * line's cost (docs/benchmarks.md). Gathered lines are joined once per chunk.
 */
export function createBufferedLogger(level: string, destination: LogDestination): AppLogger {
  const write = destination.write.bind(destination);
  const lines: string[] = [];
  let gathered = 0;
  let scheduled: NodeJS.Timeout | null = null;
  const handOver = () => {
    if (lines.length === 0) return;
    const chunk = lines.length === 1 ? lines[0] : lines.join('');
    lines.length = 0;
    gathered = 0;
    write(chunk);
  };
  const flush = () => {
    try {
      handOver();
      destination.flushSync();
    } catch {
      /* stdout may already be closed */
    }
  };
  // A write that fails (stdout closed) is reported, not thrown: logging must not take the server down.
  destination.on('error', (error: Error) => process.stderr.write(`vmplane: log write failed: ${error.message}\n`));
  // The first line gathered after a flush schedules the next one, so an idle server sets no timers.
  destination.write = (line: string): boolean => {
    lines.push(line);
    gathered += line.length;
    if (gathered >= BATCH_BYTES) handOver();
    if (!scheduled) {
      scheduled = setTimeout(() => {
        scheduled = null;
        try {
          handOver();
          // No callback: with one, sonic-boom also fsyncs, which a pipe or a terminal refuses (EINVAL).
          destination.flush();
        } catch {
          /* the destination was closed: nothing is left to write to */
        }
      }, FLUSH_INTERVAL_MS);
      scheduled.unref();
    }
    return true;
  };
  const logger = pino(loggerOptions(level), destination);
  process.once('beforeExit', flush);
  process.once('exit', flush);
  return { logger, flush };
}

let lastMs = Number.NaN;
let lastTime = '';

/** pino's `isoTime`, formatted once per millisecond: a busy server writes several lines in each. */
export function logTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${isoTime(new Date(now))}"`;
  }
  return lastTime;
}

/**
 * Each request's logger: a pino child carrying the request id. Fastify asks
 * for it with options naming the route's level, which sends pino down its
 * slow path (new level methods for every child, several closures per
 * request, most of what a request's logger allocated; docs/benchmarks.md).
 * When the route asks for the logger's own level and no serializers, the
 * child is made without options: the same bindings, the parent's level.
 */
export const requestLogger: FastifyChildLoggerFactory = (logger, bindings, options) => {
  const sameLevel = options.level === undefined || options.level === '' || options.level === logger.level;
  return sameLevel && !options.serializers ? logger.child(bindings) : logger.child(bindings, options);
};

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
