import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { Clock } from '../common/clock';
import { TooManyRequestsError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';

/** Client addresses tracked at once; the least recently seen is forgotten first. */
const MAX_CLIENTS = 10_000;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * A token bucket per client address on POST /token: TOKEN_REQUESTS_PER_MINUTE
 * attempts, refilled continuously. Each attempt costs an argon2 check (~20 ms
 * of a core), so this bounds what one client can make the server spend, and
 * how fast it can flood the per-username lockout with made-up names. Behind a
 * reverse proxy set TRUST_PROXY, or every client shares the proxy's bucket.
 */
@Injectable()
export class TokenRateLimitGuard implements CanActivate {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const retryAfter = this.take(context.switchToHttp().getRequest<FastifyRequest>().ip);
    if (retryAfter > 0) throw new TooManyRequestsError(retryAfter);
    return true;
  }

  /** Takes one attempt for the client; the seconds until it may try again when none is left, else 0. */
  take(client: string): number {
    const capacity = this.config.tokenRequestsPerMinute;
    const perMs = capacity / 60_000;
    const now = this.clock.now().getTime();
    const bucket = this.buckets.get(client) ?? { tokens: capacity, updatedAt: now };
    this.buckets.delete(client);
    bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.updatedAt) * perMs);
    bucket.updatedAt = now;
    this.buckets.set(client, bucket);
    if (this.buckets.size > MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value as string);
    if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) / perMs / 1000);
    bucket.tokens -= 1;
    return 0;
  }
}
