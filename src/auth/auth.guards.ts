import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import passport from 'passport';
import { ForbiddenError, UnauthenticatedError } from '../common/domain-errors';
import { UserRole } from '../common/user-role';
import { Principals } from '../users/principals';
import type { AuthUser } from './auth-user';
import { IS_PUBLIC, REQUIRED_ROLE } from './auth.decorators';
import { JWT_STRATEGY } from './jwt.strategy';

/**
 * Registered globally: every route needs a valid token unless marked @Public().
 *
 * It runs passport's `jwt` strategy as AuthGuard does, but with a callback
 * that holds nothing of the request (verdictOf). AuthGuard's own callback
 * closes over the execution context; with it, the objects of recent requests
 * outlived V8's young-generation collections and were promoted, which made
 * every such collection several times longer and set `GET /vms/{id}`'s tail
 * (docs/benchmarks.md, "the cost of a callback").
 */
@Injectable()
export class JwtAuthGuard extends AuthGuard(JWT_STRATEGY) {
  constructor(private readonly reflector: Reflector) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<{ user?: unknown }>();
    const { error, user, info } = await verdictOf(request, http.getResponse());
    request.user = this.handleRequest(error, user, info);
    return true;
  }

  override handleRequest<T>(error: unknown, user: T, info: unknown): T {
    if (error || !user) {
      throw new UnauthenticatedError(describeTokenProblem(info));
    }
    return user;
  }
}

/** What passport's `jwt` strategy decided about this request, handed back as a value for the guard to judge. */
function verdictOf(request: unknown, response: unknown): Promise<{ error: unknown; user: unknown; info: unknown }> {
  return new Promise((resolve) => {
    // `next` is only called when a strategy passes without a verdict, which the jwt strategy never does.
    passport.authenticate(JWT_STRATEGY, { session: false }, (error: unknown, user: unknown, info: unknown) => resolve({ error, user, info }))(request, response, (error?: unknown) =>
      resolve({ error, user: false, info: undefined }),
    );
  });
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
