import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { ForbiddenError, UnauthenticatedError } from '../common/domain-errors';
import { UserRole } from '../common/user-role';
import { Principals } from '../users/principals';
import type { AuthUser } from './auth-user';
import { IS_PUBLIC, REQUIRED_ROLE } from './auth.decorators';

/** Registered globally: every route needs a valid token unless marked @Public(). */
@Injectable()
export class JwtAuthGuard extends AuthGuard('jwt') {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    return isPublic ? true : super.canActivate(context);
  }

  override handleRequest<T>(error: unknown, user: T, info: unknown): T {
    if (error || !user) {
      throw new UnauthenticatedError(describeTokenProblem(info));
    }
    return user;
  }
}

function describeTokenProblem(info: unknown): string {
  const name = (info as { name?: string })?.name;
  if (name === 'TokenExpiredError') return 'The access token has expired';
  if (name === 'JsonWebTokenError' || name === 'NotBeforeError') return 'The access token is invalid';
  return 'A valid bearer token is required';
}

/**
 * Registered globally after JwtAuthGuard: enforces @RequireRole. A route that
 * needs a role reads the caller's user row itself rather than the cached
 * principal, so a role taken away (or a token revoked) on another replica
 * counts here before that replica's announcement arrives (see Principals).
 */
@Injectable()
export class RoleGuard {
  constructor(
    private readonly reflector: Reflector,
    private readonly principals: Principals,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const role = this.reflector.getAllAndOverride<UserRole | undefined>(REQUIRED_ROLE, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!role) return true;
    const user = context.switchToHttp().getRequest<{ user?: AuthUser }>().user;
    if (user?.role !== role) throw new ForbiddenError(`This operation requires the ${role} role`);
    const now = await this.principals.resolve(user.id, { fresh: true });
    if (!now || now.tokenVersion !== user.tokenVersion) throw new UnauthenticatedError(describeTokenProblem(undefined));
    if (now.role !== role) throw new ForbiddenError(`This operation requires the ${role} role`);
    return true;
  }
}
