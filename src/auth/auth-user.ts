import { UserRole } from '../common/user-role';

/** The authenticated caller, taken from a verified token. */
export interface AuthUser {
  id: string;
  role: UserRole;
  /** The token version the request's token carries (the user's current one, when it was checked). */
  tokenVersion?: number;
}

export function isAdmin(user: AuthUser): boolean {
  return user.role === UserRole.Admin;
}
