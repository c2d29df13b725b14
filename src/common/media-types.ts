import type { OpenAPIObject } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { UnsupportedMediaTypeError } from './domain-errors';

/**
 * The media types each route takes, read from the OpenAPI document, so what
 * the document promises and what the server accepts cannot drift apart.
 * Keys are `METHOD /fastify/:route`.
 */
export function mediaTypesByRoute(document: OpenAPIObject): Map<string, string[]> {
  const routes = new Map<string, string[]>();
  for (const [path, item] of Object.entries(document.paths)) {
    const route = path.replace(/\{([^}]+)\}/g, ':$1');
    for (const [method, operation] of Object.entries(item as Record<string, { requestBody?: { content?: object } }>)) {
      const content = operation?.requestBody?.content;
      if (content) routes.set(`${method.toUpperCase()} ${route}`, Object.keys(content));
    }
  }
  return routes;
}

/** A 415 for a request whose body is of a type its route does not take; null when it is fine or has no body. */
export function unsupportedBody(request: FastifyRequest, routes: Map<string, string[]>): UnsupportedMediaTypeError | null {
  const hasBody = request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
  if (!hasBody) return null;
  const route = `${request.method} ${request.routeOptions.url}`;
  const accepted = routes.get(route);
  if (!accepted) return null;
  const received = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  return accepted.includes(received) ? null : new UnsupportedMediaTypeError(route, received || 'a body without Content-Type', accepted);
}
