import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { randomUUID } from 'node:crypto';
import { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { AppModule } from './app.module';
import { buildOpenApiDocument, setupSwaggerUi } from './common/api-docs';
import { BODY_LIMIT_BYTES, registerBodyParsers } from './common/body-parsers';
import { ValidationFailedError } from './common/domain-errors';
import { INPUT_LIMITS, queryParametersExceed } from './common/input-limits';
import { mediaTypesByRoute, unsupportedBody } from './common/media-types';
import { ROUTE_TABLE } from './common/problem-details.filter';
import { RouteTable } from './common/route-table';
import { AppConfig } from './config/app-config';
import { PinoNestLogger, createLogger, redactUrl, requestLogger } from './logging/logger';
import { MetricsService } from './metrics/metrics.service';

export { buildOpenApiDocument };

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The Fastify adapter: 1 MiB bodies, request ids from X-Request-Id, pino as
 * the logger; `trustProxy` (TRUST_PROXY) lists the proxies whose
 * X-Forwarded-For names the client.
 */
export function createAdapter(logger: PinoLogger, trustProxy: string | null = null): FastifyAdapter {
  return new FastifyAdapter({
    ...(trustProxy ? { trustProxy } : {}),
    loggerInstance: logger,
    // One line per request is logged by the onResponse hook in configureApp instead.
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (request: { headers: Record<string, string | string[] | undefined> }) => {
      const incoming = request.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  });
}

/** Everything the HTTP layer needs besides the Nest modules; shared by main, tests and the OpenAPI script. */
export async function configureApp(app: NestFastifyApplication, config: AppConfig): Promise<OpenAPIObject> {
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  const metrics = app.get(MetricsService);

  const document = buildOpenApiDocument(app, config);
  const mediaTypes = mediaTypesByRoute(document);
  const routes = new RouteTable();
  fastify.decorate(ROUTE_TABLE, routes);
  fastify.addHook('onRoute', (route) => routes.add(route.method, route.url));

  registerBodyParsers(app);
  // Callback-style hooks: no promise per request on the hot path.
  // Checked before the body is read, so refusing costs nothing.
  fastify.addHook('onRequest', (request, _reply, done) => {
    if (queryParametersExceed(request.query)) {
      done(new ValidationFailedError([{ field: 'query', message: `has more than ${INPUT_LIMITS.maxEntries} parameters` }]));
      return;
    }
    done(unsupportedBody(request, mediaTypes) ?? undefined);
  });
  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    done(null, payload);
  });
  const observers = new Map<string, { observe(seconds: number): void }>();
  fastify.addHook('onResponse', (request: FastifyRequest, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const key = `${request.method} ${route} ${reply.statusCode}`;
    let observer = observers.get(key);
    if (!observer) {
      observer = metrics.httpDuration.labels(request.method, route, String(reply.statusCode));
      observers.set(key, observer);
    }
    observer.observe(reply.elapsedTime / 1000);
    request.log.info(
      { method: request.method, url: redactUrl(request.url), route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 },
      'request',
    );
    done();
  });

  setupSwaggerUi(app, document);
  return document;
}

export async function createApp(config: AppConfig, logger: PinoLogger = createLogger(config.logLevel)): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), createAdapter(logger, config.trustProxy), {
    logger: new PinoNestLogger(logger),
  });
  await configureApp(app, config);
  return app;
}
