import { ArgumentsHost, Catch, ExceptionFilter, Logger, NotFoundException } from '@nestjs/common';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MethodNotAllowedError, NotFoundError } from './domain-errors';
import { Problem, toProblem } from './problem-details';
import type { RouteTable } from './route-table';

/** Where configureApp leaves the route table on the Fastify instance. */
export const ROUTE_TABLE = 'vmplaneRouteTable';

/** The one global exception filter: every error leaves as application/problem+json. */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    sendProblem(request, reply, error, this.logger);
  }
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: unknown, logger: Pick<Logger, 'error'>): void {
  const path = request.url.split('?')[0];
  const problem = toProblem(unmatchedRoute(request, path, error) ?? error, path, String(request.id));
  if (problem.isFault) {
    logger.error({ err: error, reqId: request.id, code: problem.body.code }, 'request failed');
  }
  if (problem.status === 401) problem.headers['www-authenticate'] = bearerChallenge(request, problem);
  void reply
    .status(problem.status)
    .headers({ 'cache-control': 'no-store', ...problem.headers })
    .type('application/problem+json')
    .send(problem.body);
}

/**
 * Nest answers a request no route matched with "Cannot GET /path?query",
 * echoing the query (passwords included). This names the path only, and a
 * known path asked with the wrong method is a 405 listing what it takes.
 */
function unmatchedRoute(request: FastifyRequest, path: string, error: unknown): Error | null {
  if (!(error instanceof NotFoundException)) return null;
  const routes = (request.server as FastifyInstance & { [ROUTE_TABLE]?: RouteTable })[ROUTE_TABLE];
  const allowed = routes?.allowedMethods(path) ?? [];
  if (allowed.length > 0 && !allowed.includes(request.method)) return new MethodNotAllowedError(request.method, path, allowed);
  return new NotFoundError('route', `${request.method} ${path}`);
}

/** RFC 6750 §3: error="invalid_token" only when a bearer token was sent and refused. */
function bearerChallenge(request: FastifyRequest, problem: Problem): string {
  const sentToken = /^Bearer\s+\S/i.test(request.headers.authorization ?? '');
  if (!sentToken || problem.body.code !== 'unauthenticated') return 'Bearer realm="vmplane"';
  const description = String(problem.body.detail).replace(/["\\]/g, '');
  return `Bearer realm="vmplane", error="invalid_token", error_description="${description}"`;
}
