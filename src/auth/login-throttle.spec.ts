import { FakeClock } from '../common/testing/fake-clock';
import { AppConfig } from '../config/app-config';
import { LoginThrottle } from './login-throttle';

describe(LoginThrottle.name, () => {
  const config = { loginMaxFailures: 3, loginLockoutSeconds: 60 } as AppConfig;

  it('locks a username after N consecutive failures until the lockout passes', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(config, clock);
    throttle.recordFailure('alice');
    throttle.recordFailure('alice');
    expect(throttle.retryAfter('alice')).toBe(0);
    throttle.recordFailure('alice');
    expect(throttle.retryAfter('alice')).toBe(60);
    expect(throttle.retryAfter('bob')).toBe(0);
    clock.ms += 59_500;
    expect(throttle.retryAfter('alice')).toBe(1);
    clock.ms += 600;
    expect(throttle.retryAfter('alice')).toBe(0);
    // After the lockout, the count starts again.
    throttle.recordFailure('alice');
    expect(throttle.retryAfter('alice')).toBe(0);
  });

  it('forgets failures after a success', () => {
    const throttle = new LoginThrottle(config, new FakeClock());
    throttle.recordFailure('alice');
    throttle.recordFailure('alice');
    throttle.recordSuccess('alice');
    throttle.recordFailure('alice');
    throttle.recordFailure('alice');
    expect(throttle.retryAfter('alice')).toBe(0);
  });

  it('holds a live lock through 10,001 failures of made-up usernames, in bounded memory', () => {
    const clock = new FakeClock();
    const throttle = new LoginThrottle(config, clock);
    for (let i = 0; i < 3; i++) throttle.recordFailure('bob');
    expect(throttle.retryAfter('bob')).toBe(60);
    for (let i = 0; i < 10_001; i++) {
      throttle.recordFailure(`made-up-${i}`);
      clock.ms += 1;
    }
    expect(throttle.retryAfter('bob')).toBe(50);
    expect(throttle.size).toEqual({ counted: 10_000, locked: 1 });

    // Locked usernames are forgotten once their lock has passed.
    clock.ms += 60_000;
    throttle.recordFailure('someone');
    expect(throttle.size.locked).toBe(0);
    expect(throttle.retryAfter('bob')).toBe(0);
  });
});
