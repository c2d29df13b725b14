import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';

interface Failures {
  count: number;
  lockedUntil: number;
}

const MAX_TRACKED_USERNAMES = 10_000;

/**
 * Counts failed sign-ins per username. After LOGIN_MAX_FAILURES in a row the
 * username is locked for LOGIN_LOCKOUT_SECONDS, before the password is even
 * checked. State is per process; with several replicas an attacker gets
 * N × the budget, which is still a hard bound.
 */
@Injectable()
export class LoginThrottle {
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** Seconds until the username may try again, or 0. */
  retryAfter(username: string): number {
    const entry = this.failures.get(username);
    if (!entry) return 0;
    const remaining = entry.lockedUntil - this.clock.now().getTime();
    return remaining > 0 ? Math.ceil(remaining / 1000) : 0;
  }

  recordFailure(username: string): void {
    const now = this.clock.now().getTime();
    const entry = this.failures.get(username) ?? { count: 0, lockedUntil: 0 };
    if (entry.lockedUntil !== 0 && entry.lockedUntil <= now) {
      entry.count = 0;
      entry.lockedUntil = 0;
    }
    entry.count++;
    if (entry.count >= this.config.loginMaxFailures) entry.lockedUntil = now + this.config.loginLockoutSeconds * 1000;
    this.failures.delete(username);
    this.failures.set(username, entry);
    if (this.failures.size > MAX_TRACKED_USERNAMES) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
  }

  recordSuccess(username: string): void {
    this.failures.delete(username);
  }
}
