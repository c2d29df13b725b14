import { UserRole } from '../common/user-role';

/** The authenticated caller, taken from a verified token. */
export interface AuthUser {
  id: string;
  role: UserRole;
}

export function isAdmin(user: AuthUser): boolean {
  return user.role === UserRole.Admin;
}
