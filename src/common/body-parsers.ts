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
    const tooComplex = scanJsonShape(body);
    if (tooComplex) {
      done(new ValidationFailedError([tooComplex]), undefined);
      return;
    }
    parseJson(request as Parameters<typeof parseJson>[0], body.toString('utf8'), done);
  });

  app.useBodyParser('application/x-www-form-urlencoded', { bodyLimit: BODY_LIMIT_BYTES }, (_request, body, done) => {
    if (formFieldsExceed(body)) {
      done(new ValidationFailedError([{ field: 'body', message: `has more than ${INPUT_LIMITS.maxEntries} fields` }]), undefined);
      return;
    }
    done(null, parseQueryString(body.toString('utf8')));
  });

  fastify.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES }, (_request, body, done) =>
    done(null, body),
  );
}
