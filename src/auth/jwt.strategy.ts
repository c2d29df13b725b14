import { Injectable } from '@nestjs/common';
import { createSecretKey } from 'node:crypto';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AppConfig } from '../config/app-config';
import { Principals } from '../users/principals';
import type { AuthUser } from './auth-user';
import { VerifiedTokens } from './verified-tokens';

interface TokenClaims {
  sub?: unknown;
  role?: unknown;
  ver?: unknown;
  exp?: unknown;
  nbf?: unknown;
}

/** The name passport knows the strategy by. */
export const JWT_STRATEGY = 'jwt';

/** How many verified tokens are remembered: a few MB at most, and far more than there are active clients. */
export const REMEMBERED_TOKENS = 10_000;

const bearerToken = ExtractJwt.fromAuthHeaderAsBearerToken();

/**
 * Verifies HS256 bearer tokens: signature, expiry, issuer and audience. The
 * algorithm list excludes `none` and every asymmetric algorithm. Then the
 * subject must still be a user who may act, and the token must carry their
 * current token version; the role is the user's role now, not the one the
 * token was issued with.
 *
 * A token that passed passport-jwt's verification is remembered
 * (VerifiedTokens): the next request with the same token skips the signature
 * check but not its expiry, nor the user lookup.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, JWT_STRATEGY) {
  private readonly verified = new VerifiedTokens<TokenClaims>(REMEMBERED_TOKENS);

  constructor(
    config: AppConfig,
    private readonly principals: Principals,
  ) {
    super({
      jwtFromRequest: bearerToken,
      // A KeyObject: given a string, jsonwebtoken tries (and fails) to parse it as a PEM public key on every verify.
      secretOrKey: createSecretKey(Buffer.from(config.jwtSecret)) as unknown as string,
      algorithms: ['HS256'],
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      ignoreExpiration: false,
      passReqToCallback: true,
    });
  }

  /** passport calls this on a per-request copy of the strategy, which carries success, fail and error. */
  override authenticate(request: Request, options?: object): void {
    const token = bearerToken(request);
    const claims = token ? this.verified.valid(token, Date.now()) : undefined;
    if (!claims) {
      super.authenticate(request, options);
      return;
    }
    this.authorize(claims).then(
      (user) => (user ? this.success(user) : this.fail(401)),
      (error: unknown) => this.error(error as Error),
    );
  }

  /** After passport-jwt verified the token: remember it, then authorize its subject. */
  async validate(request: Request, claims: TokenClaims): Promise<AuthUser | false> {
    const token = bearerToken(request);
    if (token) this.verified.remember(token, claims);
    return this.authorize(claims);
  }

  private async authorize(claims: TokenClaims): Promise<AuthUser | false> {
    if (typeof claims.sub !== 'string') return false;
    const principal = await this.principals.resolve(claims.sub);
    if (!principal || (claims.ver ?? 0) !== principal.tokenVersion) return false;
    return { id: principal.id, role: principal.role, tokenVersion: principal.tokenVersion };
  }
}
