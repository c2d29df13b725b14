import { FakeClock } from '../common/testing/fake-clock';
import { AppConfig } from '../config/app-config';
import { LoginThrottle } from './login-throttle';

describe(LoginThrottle.name, () => {
  const config = { loginMaxFailures: 3, loginLockoutSeconds: 60 } as AppConfig;

  it('locks a username after N consecutive failures until the lockout passes', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(config, clock);
    throttle.recordFailure('alice', 1);
    throttle.recordFailure('alice', 1);
    expect(throttle.retryAfter('alice', 1)).toBe(0);
    throttle.recordFailure('alice', 1);
    expect(throttle.retryAfter('alice', 1)).toBe(60);
    expect(throttle.retryAfter('bob', 1)).toBe(0);
    clock.ms += 59_500;
    expect(throttle.retryAfter('alice', 1)).toBe(1);
    clock.ms += 600;
    expect(throttle.retryAfter('alice', 1)).toBe(0);
    // After the lockout, the count starts again.
    throttle.recordFailure('alice', 1);
    expect(throttle.retryAfter('alice', 1)).toBe(0);
  });

  it("ends a lock when the user's token version moves on (an admin reset the password), and only then", () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(config, clock);
    for (let i = 0; i < 3; i++) throttle.recordFailure('alice', 4);
    expect(throttle.retryAfter('alice', 4)).toBe(60);
    expect(throttle.retryAfter('alice', 5)).toBe(0);
    // Gone, not just skipped: the old version no longer finds it either.
    expect(throttle.retryAfter('alice', 4)).toBe(0);
    expect(throttle.size.locked).toBe(0);

    // A name locked while no such user existed stays locked for no user, and ends once the name has one.
    for (let i = 0; i < 3; i++) throttle.recordFailure('ghost', null);
    expect(throttle.retryAfter('ghost', null)).toBe(60);
    expect(throttle.retryAfter('ghost', 0)).toBe(0);
  });

  it('forgets failures after a success', () => {
    const throttle = new LoginThrottle(config, new FakeClock());
    throttle.recordFailure('alice', 1);
    throttle.recordFailure('alice', 1);
    throttle.recordSuccess('alice');
    throttle.recordFailure('alice', 1);
    throttle.recordFailure('alice', 1);
    expect(throttle.retryAfter('alice', 1)).toBe(0);
  });

  it('holds a live lock through 10,001 failures of made-up usernames, in bounded memory', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(config, clock);
    for (let i = 0; i < 3; i++) throttle.recordFailure('bob', 1);
    expect(throttle.retryAfter('bob', 1)).toBe(60);
    for (let i = 0; i < 10_001; i++) {
      throttle.recordFailure(`made-up-${i}`, null);
      clock.ms += 1;
    }
    expect(throttle.retryAfter('bob', 1)).toBe(50);
    expect(throttle.size).toEqual({ counted: 10_000, locked: 1 });

    // Locked usernames are forgotten once their lock has passed.
    clock.ms += 60_000;
    throttle.recordFailure('someone', null);
    expect(throttle.size.locked).toBe(0);
    expect(throttle.retryAfter('bob', 1)).toBe(0);
  });
});
