import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import { UserRole } from '../common/user-role';
import type { AuthUser } from './auth-user';

export const IS_PUBLIC = 'vmplane:public';
export const REQUIRED_ROLE = 'vmplane:role';

/** Marks a route that needs no token. Every other route requires one. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** Restricts a route to a role (admins only, in practice). */
export const RequireRole = (role: UserRole) => SetMetadata(REQUIRED_ROLE, role);

export const CurrentUser = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): AuthUser => ctx.switchToHttp().getRequest<{ user: AuthUser }>().user,
);
