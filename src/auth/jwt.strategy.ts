import { Injectable } from '@nestjs/common';
import { createSecretKey } from 'node:crypto';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { AppConfig } from '../config/app-config';
import { UserRole } from '../common/user-role';
import type { AuthUser } from './auth-user';

interface TokenClaims {
  sub?: unknown;
  role?: unknown;
}

/**
 * Verifies HS256 bearer tokens: signature, expiry, issuer and audience. The
 * algorithm list excludes `none` and every asymmetric algorithm.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(config: AppConfig) {
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

  validate(claims: TokenClaims): AuthUser | false {
    if (typeof claims.sub !== 'string') return false;
    if (claims.role !== UserRole.Admin && claims.role !== UserRole.Member) return false;
    return { id: claims.sub, role: claims.role };
  }
}
