import { backoffDelayMs } from './retry-policy';

describe('backoffDelayMs', () => {
  const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };

  it('doubles the ceiling with each failed attempt, up to the cap', () => {
    const almostOne = () => 0.999999;
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, policy, almostOne))).toEqual([99, 199, 399, 799, 999, 999]);
  });

  it('draws uniformly from zero (full jitter)', () => {
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
    expect(backoffDelayMs(3, policy, () => 0.5)).toBe(200);
  });

  it('never waits when the base is zero', () => {
    expect(backoffDelayMs(4, { ...policy, baseDelayMs: 0 }, () => 0.9)).toBe(0);
  });
});
