import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { problemResponse } from './api-problems.decorator';
import { NotFoundError } from './domain-errors';
import { ProblemDetailsDto } from './problem-details.dto';
import { projectRoot } from './project-root';

export const DOCS_PATH = '/docs';

/** What Swagger UI's page loads; the rest of swagger-ui-dist (source maps, README, package.json) is not served. */
const SWAGGER_UI_FILES = new Set([
  '',
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'swagger-ui-init.js',
  'favicon-16x16.png',
  'favicon-32x32.png',
]);

/** Swagger UI runs only its own scripts, talks only to this server, and is never framed. Its page has one inline <style>. */
const SWAGGER_UI_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export function buildOpenApiDocument(app: NestFastifyApplication, config: AppConfig): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('vmplane')
    .setDescription(
      'A control plane for GPU virtual machines. Sign in with POST /token (form: username, password), then send ' +
        '`Authorization: Bearer <access_token>`; in Swagger UI, Authorize with the password flow does both. ' +
        'Errors are RFC 9457 problem details with a stable `code`.',
    )
    .setVersion(packageVersion())
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    .addServer(`http://${config.host}:${config.port}`)
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /token' })
    .addOAuth2(
      { type: 'oauth2', description: 'Sign in with a username and password (POST /token)', flows: { password: { tokenUrl: '/token', scopes: {} } } },
      'oauth2',
    )
    .build();
  return documentEdgeBehaviour(SwaggerModule.createDocument(app, builder, { extraModels: [ProblemDetailsDto] }));
}

/**
 * What the HTTP edge does for every operation, written into the document once
 * instead of on each controller: a body can be refused as too large (413) or
 * of the wrong media type (415), and every bearer-secured operation also takes
 * a token from the OAuth2 password flow, so Swagger UI's Authorize can sign in.
 */
function documentEdgeBehaviour(document: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(document.paths)) {
    for (const operation of Object.values(item) as { requestBody?: unknown; responses?: Record<string, unknown>; security?: Record<string, string[]>[] }[]) {
      if (!operation?.responses) continue;
      if (operation.requestBody) {
        operation.responses['413'] ??= withoutStatus(problemResponse(413, ['payload_too_large']));
        operation.responses['415'] ??= withoutStatus(problemResponse(415, ['unsupported_media_type']));
      }
      // A new array: @nestjs/swagger shares one security array among a controller's operations.
      if (operation.security?.some((requirement) => 'bearer' in requirement)) operation.security = [...operation.security, { oauth2: [] }];
    }
  }
  return document;
}

function withoutStatus<T extends { status: number }>(response: T): Omit<T, 'status'> {
  const { status: _status, ...rest } = response;
  return rest;
}

/** Serves Swagger UI at /docs and the document at /openapi.json, with nothing else of swagger-ui-dist and with a CSP. */
export function setupSwaggerUi(app: NestFastifyApplication, document: OpenAPIObject): void {
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  fastify.addHook('onRequest', (request, reply, done) => {
    const path = request.url.split('?')[0];
    if (path === `${DOCS_PATH}/`) {
      // The page names its files relative to /docs; from /docs/ a browser would ask for /docs/docs/….
      void reply.redirect(DOCS_PATH + request.url.slice(path.length), 301);
      return;
    }
    if (path.startsWith(`${DOCS_PATH}/`) && !SWAGGER_UI_FILES.has(path.slice(DOCS_PATH.length + 1))) {
      done(new NotFoundError('route', `${request.method} ${path}`));
      return;
    }
    done();
  });
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (request.url === DOCS_PATH || request.url.startsWith(`${DOCS_PATH}/`) || request.url.startsWith(`${DOCS_PATH}?`)) reply.headers(SWAGGER_UI_HEADERS);
    done(null, payload);
  });
  SwaggerModule.setup(DOCS_PATH.slice(1), app, document, { jsonDocumentUrl: 'openapi.json', raw: ['json'] });
}

/** The version in package.json, so every way of starting the server documents the same one. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
