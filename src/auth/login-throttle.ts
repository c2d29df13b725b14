import { Injectable, Logger } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';

/** Usernames with failures but no lock yet; the oldest is forgotten first. */
const MAX_COUNTED_USERNAMES = 10_000;
/**
 * Live locks, never evicted before they expire. Filling this takes
 * 100,000 × LOGIN_MAX_FAILURES failed argon2 checks within one lockout
 * (500,000 in 300 s by default, where one check takes 25–60 ms of a core).
 */
const MAX_LOCKED_USERNAMES = 100_000;

/** A live lock: until when, and the user's token version when it was set (null: no such user then). */
interface Lock {
  until: number;
  version: number | null;
}

/**
 * Counts failed sign-ins per username. After LOGIN_MAX_FAILURES in a row the
 * username is locked for LOGIN_LOCKOUT_SECONDS, before the password is even
 * checked. Failures are counted and locks are held in separate tables, so a
 * flood of made-up usernames can push out counts but never a live lock.
 * A lock remembers the user's token version: an admin's password reset (or a
 * disable and enable) moves the version on, which ends the lock, so the user
 * can sign in with the new password at once.
 * State is per process; with several replicas an attacker gets N × the
 * budget, which is still a hard bound.
 */
@Injectable()
export class LoginThrottle {
  private readonly logger = new Logger(LoginThrottle.name);
  private readonly failures = new Map<string, number>();
  /** Username → its lock. Insertion order is expiry order, since every lock lasts as long. */
  private readonly locks = new Map<string, Lock>();

  constructor(
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /** Seconds until the username may try again, or 0. `version`: the user's token version now (null: no such user). */
  retryAfter(username: string, version: number | null): number {
    const lock = this.locks.get(username);
    if (lock === undefined) return 0;
    const remaining = lock.until - this.clock.now().getTime();
    if (remaining > 0 && lock.version === version) return Math.ceil(remaining / 1000);
    this.locks.delete(username);
    return 0;
  }

  /** `version`: the user's token version (null: no such user), which a lock set now remembers. */
  recordFailure(username: string, version: number | null): void {
    const now = this.clock.now().getTime();
    this.forgetExpiredLocks(now);
    if (this.locks.has(username)) return;
    const count = (this.failures.get(username) ?? 0) + 1;
    this.failures.delete(username);
    if (count >= this.config.loginMaxFailures) {
      if (this.locks.size < MAX_LOCKED_USERNAMES) {
        this.locks.set(username, { until: now + this.config.loginLockoutSeconds * 1000, version });
      } else {
        this.logger.warn({ locked: this.locks.size }, 'sign-in lock table full: this username is not locked; the per-client /token limit still applies');
      }
      return;
    }
    this.failures.set(username, count);
    if (this.failures.size > MAX_COUNTED_USERNAMES) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
  }

  recordSuccess(username: string): void {
    this.failures.delete(username);
  }

  /** How many usernames are tracked, for tests of the memory bound. */
  get size(): { counted: number; locked: number } {
    return { counted: this.failures.size, locked: this.locks.size };
  }

  private forgetExpiredLocks(now: number): void {
    for (const [username, lock] of this.locks) {
      if (lock.until > now) break;
      this.locks.delete(username);
    }
  }
}
