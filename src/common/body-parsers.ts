import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { parse as parseQueryString } from 'node:querystring';
import { ValidationFailedError } from './domain-errors';
import { INPUT_LIMITS, formFieldsExceed, scanJsonShape } from './input-limits';

export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * The body parsers of every route, replacing Nest's defaults: each refuses a
 * body wider or deeper than INPUT_LIMITS before building it, so no request
 * (signed in or not) makes validation build one error per key of a 1 MiB body.
 */
export function registerBodyParsers(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  const { onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig as { onProtoPoisoning?: 'error'; onConstructorPoisoning?: 'error' };
  const parseJson = fastify.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');

  app.useBodyParser('application/json', { bodyLimit: BODY_LIMIT_BYTES }, (request, body, done) => {
    // No body, whatever the Content-Type says: many HTTP clients send `Content-Type: application/json` on every
    // request, a body-less DELETE or action included. Routes that take a body then answer 400 naming its required fields.
    if (isBlank(body)) {
      done(null, undefined);
      return;
    }
    const tooComplex = scanJsonShape(body);
    if (tooComplex) {
      done(new ValidationFailedError([tooComplex]), undefined);
      return;
    }
    const text = body.toString('utf8');
    parseJson(request as Parameters<typeof parseJson>[0], text, (error, parsed) => done(error ? jsonProblem(text, error) : null, parsed));
  });

  app.useBodyParser('application/x-www-form-urlencoded', { bodyLimit: BODY_LIMIT_BYTES }, (_request, body, done) => {
    if (formFieldsExceed(body)) {
      done(new ValidationFailedError([{ field: 'body', message: `has more than ${INPUT_LIMITS.maxEntries} fields` }]), undefined);
      return;
    }
    const text = body.toString('utf8');
    if (looksLikeJson(text)) {
      done(new ValidationFailedError([{ field: 'body', message: 'is JSON, but Content-Type says a form (as `curl -d` sends): add -H "Content-Type: application/json"' }]), undefined);
      return;
    }
    done(null, parseQueryString(text));
  });

  fastify.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (_request, body, done) =>
    done(null, body),
  );
}

/**
 * Why a JSON body was refused, naming the problem: the parser's own words for
 * text that is not JSON, or the key Fastify refuses in JSON that is
 * (`__proto__`, `constructor.prototype`: prototype poisoning).
 */
function jsonProblem(text: string, error: Error): Error {
  try {
    JSON.parse(text);
  } catch (syntax) {
    return new ValidationFailedError([{ field: 'body', message: `is not valid JSON: ${(syntax as Error).message}` }]);
  }
  if (/"(__proto__|constructor)"\s*:/.test(text)) {
    return new ValidationFailedError([{ field: 'body', message: 'must not have a key named __proto__, or constructor with a prototype' }]);
  }
  return error;
}

/** Nothing but JSON whitespace (space, tab, line feed, carriage return). */
function isBlank(body: Buffer): boolean {
  for (const byte of body) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  return true;
}

/** A whole body that parses as a JSON object or array. */
function looksLikeJson(text: string): boolean {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
