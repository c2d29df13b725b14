import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';

/** With METRICS_TOKEN set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; without it, everyone. */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(config: AppConfig) {
    this.expected = config.metricsToken === null ? null : digest(config.metricsToken);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === null) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    // Hashing first gives equal lengths, so the comparison takes the same time whatever was sent.
    if (match && timingSafeEqual(digest(match[1]), this.expected)) return true;
    throw new UnauthenticatedError(match ? 'The metrics token is not valid' : 'A bearer token (METRICS_TOKEN) is required for /metrics');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
