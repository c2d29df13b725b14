import { FakeClock } from '../common/testing/fake-clock';
import { AppConfig } from '../config/app-config';
import { TokenRateLimitGuard } from './token-rate-limit.guard';

describe(TokenRateLimitGuard.name, () => {
  it('allows a burst of N per client, then one attempt per 60/N s', () => {
    const clock = new FakeClock();
    const limiter = new TokenRateLimitGuard({ tokenRequestsPerMinute: 6 } as AppConfig, clock);
    for (let i = 0; i < 6; i++) expect(limiter.take('10.0.0.1')).toBe(0);
    expect(limiter.take('10.0.0.1')).toBe(10);
    expect(limiter.take('10.0.0.2')).toBe(0);
    clock.ms += 9_000;
    expect(limiter.take('10.0.0.1')).toBe(1);
    clock.ms += 1_000;
    expect(limiter.take('10.0.0.1')).toBe(0);
    expect(limiter.take('10.0.0.1')).toBe(10);
    // A full minute refills the bucket, but never beyond N.
    clock.ms += 600_000;
    for (let i = 0; i < 6; i++) expect(limiter.take('10.0.0.1')).toBe(0);
    expect(limiter.take('10.0.0.1')).toBeGreaterThan(0);
  });
});
