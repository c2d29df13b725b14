import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LogController, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { AppModule } from './app.module';
import { BODY_LIMIT_BYTES, registerBodyParsers } from './common/body-parsers';
import { ValidationFailedError } from './common/domain-errors';
import { INPUT_LIMITS, queryParametersExceed } from './common/input-limits';
import { mediaTypesByRoute, unsupportedBody } from './common/media-types';
import { ProblemDetailsDto } from './common/problem-details.dto';
import { projectRoot } from './common/project-root';
import { AppConfig } from './config/app-config';
import { PinoNestLogger, createLogger, redactUrl } from './logging/logger';
import { MetricsService } from './metrics/metrics.service';

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

  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
  return document;
}

export function buildOpenApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('vmplane')
    .setDescription(
      'A control plane for GPU virtual machines. Sign in with POST /token (form: username, password), then send ' +
        '`Authorization: Bearer <access_token>`. Errors are RFC 9457 problem details with a stable `code`.',
    )
    .setVersion(packageVersion())
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer(`http://${config.host}:${config.port}`)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /token' })
    .build();
  return SwaggerModule.createDocument(app, builder, { extraModels: [ProblemDetailsDto] });
}

/** The version in package.json, so every way of starting the server documents the same one. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export async function createApp(config: AppConfig, logger: PinoLogger = createLogger(config.logLevel)): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), createAdapter(logger, config.trustProxy), {
    logger: new PinoNestLogger(logger),
  });
  await configureApp(app, config);
  return app;
}
