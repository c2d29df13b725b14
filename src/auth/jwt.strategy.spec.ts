import type * as Jwt from 'jsonwebtoken';
import { UserRole } from '../common/user-role';
import { AppConfig } from '../config/app-config';
import type { Principal, Principals } from '../users/principals';
import type { AuthUser } from './auth-user';
import { JwtStrategy } from './jwt.strategy';
import { VerifiedTokens } from './verified-tokens';

/** The module object passport-jwt calls `verify` on, so a spy sees its calls. */
const jsonwebtoken = jest.requireActual<typeof Jwt>('jsonwebtoken');

const config = { jwtSecret: 'a-test-secret-of-at-least-32-characters!', jwtIssuer: 'vmplane', jwtAudience: 'vmplane-api' } as AppConfig;

type Outcome = { user: AuthUser } | { failed: unknown } | { error: unknown };

/** Runs the strategy as passport does: on a per-request copy that carries success, fail and error. */
function authenticate(strategy: JwtStrategy, token: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const attempt = Object.create(strategy) as JwtStrategy & Record<string, unknown>;
    attempt.success = (user: AuthUser) => resolve({ user });
    attempt.fail = (info: unknown) => resolve({ failed: info });
    attempt.error = (error: unknown) => resolve({ error });
    attempt.authenticate({ headers: { authorization: `Bearer ${token}` } } as never);
  });
}

function sign(claims: object, options: Jwt.SignOptions = {}): string {
  return jsonwebtoken.sign(claims, config.jwtSecret, { algorithm: 'HS256', expiresIn: 60, issuer: config.jwtIssuer, audience: config.jwtAudience, ...options });
}

describe(JwtStrategy.name, () => {
  let principal: Principal;
  let resolve: jest.Mock;
  let strategy: JwtStrategy;
  let verify: jest.SpyInstance;

  beforeEach(() => {
    jest.useFakeTimers({ now: Date.UTC(2026, 11, 1, 12, 0, 0) });
    principal = { id: 'u1', role: UserRole.Member, tokenVersion: 0 } as Principal;
    resolve = jest.fn(async (id: string) => (id === principal.id ? { ...principal } : null));
    strategy = new JwtStrategy(config, { resolve } as unknown as Principals);
    verify = jest.spyOn(jsonwebtoken, 'verify');
  });
  afterEach(() => {
    verify.mockRestore();
    jest.useRealTimers();
  });

  it('verifies a token once, then recognises it without verifying it again, and looks the user up every time', async () => {
    const token = sign({ sub: 'u1', role: 'member', ver: 0 });
    await expect(authenticate(strategy, token)).resolves.toEqual({ user: { id: 'u1', role: UserRole.Member, tokenVersion: 0 } });
    await expect(authenticate(strategy, token)).resolves.toEqual({ user: { id: 'u1', role: UserRole.Member, tokenVersion: 0 } });
    expect(verify).toHaveBeenCalledTimes(1);
    expect(resolve).toHaveBeenCalledTimes(2);
  });

  it('takes a role change and a revoked token version into account on a remembered token at once', async () => {
    const token = sign({ sub: 'u1', role: 'member', ver: 0 });
    await authenticate(strategy, token);
    principal.role = UserRole.Admin;
    await expect(authenticate(strategy, token)).resolves.toEqual({ user: { id: 'u1', role: UserRole.Admin, tokenVersion: 0 } });
    principal.tokenVersion = 1;
    await expect(authenticate(strategy, token)).resolves.toEqual({ failed: 401 });
  });

  it('refuses a remembered token once it expires, with jsonwebtoken’s reason', async () => {
    const token = sign({ sub: 'u1', ver: 0 }, { expiresIn: 60 });
    await expect(authenticate(strategy, token)).resolves.toHaveProperty('user');
    jest.advanceTimersByTime(59_999);
    await expect(authenticate(strategy, token)).resolves.toHaveProperty('user');
    jest.advanceTimersByTime(1);
    const outcome = await authenticate(strategy, token);
    expect(outcome).toEqual({ failed: expect.objectContaining({ name: 'TokenExpiredError' }) });
  });

  it('does not let a token that differs from a remembered one in any byte through', async () => {
    const token = sign({ sub: 'u1', ver: 0 });
    await authenticate(strategy, token);
    const [header, payload, signature] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), sub: 'u2' })).toString('base64url');
    principal.id = 'u2';
    await expect(authenticate(strategy, `${header}.${forged}.${signature}`)).resolves.toEqual({ failed: expect.objectContaining({ name: 'JsonWebTokenError' }) });
    const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
    await expect(authenticate(strategy, `${header}.${payload}.${flipped}`)).resolves.toEqual({ failed: expect.objectContaining({ name: 'JsonWebTokenError' }) });
  });

  it('does not remember a token another issuer signed with the same secret', async () => {
    const token = sign({ sub: 'u1', ver: 0 }, { issuer: 'someone-else' });
    await expect(authenticate(strategy, token)).resolves.toEqual({ failed: expect.objectContaining({ name: 'JsonWebTokenError' }) });
    await expect(authenticate(strategy, token)).resolves.toEqual({ failed: expect.objectContaining({ name: 'JsonWebTokenError' }) });
    expect(verify).toHaveBeenCalledTimes(2);
  });
});

describe(VerifiedTokens.name, () => {
  const now = Date.UTC(2026, 11, 1, 12, 0, 0);
  const exp = now / 1000 + 60;

  it('holds at most its capacity, letting the oldest go first', () => {
    const tokens = new VerifiedTokens<{ exp: number }>(2);
    tokens.remember('a', { exp });
    tokens.remember('b', { exp });
    tokens.remember('c', { exp });
    expect(tokens.size).toBe(2);
    expect(tokens.valid('a', now)).toBeUndefined();
    expect(tokens.valid('b', now)).toEqual({ exp });
    expect(tokens.valid('c', now)).toEqual({ exp });
  });

  it('does not remember a token without a numeric expiry, and forgets an expired one', () => {
    const tokens = new VerifiedTokens<{ exp?: unknown }>(10);
    tokens.remember('never-expires', {});
    tokens.remember('odd', { exp: '9999999999' });
    tokens.remember('t', { exp });
    expect(tokens.size).toBe(1);
    expect(tokens.valid('t', exp * 1000 - 1)).toEqual({ exp });
    expect(tokens.valid('t', exp * 1000)).toBeUndefined();
    expect(tokens.size).toBe(0);
  });

  it('does not answer for a token before its not-before time', () => {
    const tokens = new VerifiedTokens<{ exp: number; nbf: number }>(10);
    tokens.remember('t', { exp, nbf: now / 1000 + 10 });
    expect(tokens.valid('t', now)).toBeUndefined();
    expect(tokens.valid('t', now + 10_000)).toEqual({ exp, nbf: now / 1000 + 10 });
  });
});
