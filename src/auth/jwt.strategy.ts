import { Injectable } from '@nestjs/common';
import { createSecretKey } from 'node:crypto';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AppConfig } from '../config/app-config';
import { Principals } from '../users/principals';
import type { AuthUser } from './auth-user';

interface TokenClaims {
  sub?: unknown;
  role?: unknown;
  ver?: unknown;
}

/**
 * Verifies HS256 bearer tokens: signature, expiry, issuer and audience. The
 * algorithm list excludes `none` and every asymmetric algorithm. Then the
 * subject must still be a user who may act, and the token must carry their
 * current token version; the role is the user's role now, not the one the
 * token was issued with.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    config: AppConfig,
    private readonly principals: Principals,
  ) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      // A KeyObject: given a string, jsonwebtoken tries (and fails) to parse it as a PEM public key on every verify.
      secretOrKey: createSecretKey(Buffer.from(config.jwtSecret)) as unknown as string,
      algorithms: ['HS256'],
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      ignoreExpiration: false,
    });
  }

  async validate(claims: TokenClaims): Promise<AuthUser | false> {
    if (typeof claims.sub !== 'string') return false;
    const principal = await this.principals.resolve(claims.sub);
    if (!principal || (claims.ver ?? 0) !== principal.tokenVersion) return false;
    return { id: principal.id, role: principal.role, tokenVersion: principal.tokenVersion };
  }
}
