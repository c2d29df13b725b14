import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { toProblem } from './problem-details';

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
  const problem = toProblem(error, request.url.split('?')[0], String(request.id));
  if (problem.isFault) {
    logger.error({ err: error, reqId: request.id, code: problem.body.code }, 'request failed');
  }
  void reply
    .status(problem.status)
    .headers(problem.headers)
    .type('application/problem+json')
    .send(problem.body);
}
