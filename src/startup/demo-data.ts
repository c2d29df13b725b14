import { join } from 'node:path';
import { projectRoot } from '../common/project-root';
import { UserRole } from '../common/user-role';

/** What demo mode (VMPLANE_DEMO=1, `npm start`) adds; never loaded otherwise. */
export const DEMO_FLEET_FILE = join(projectRoot(), 'fleet', 'demo-fleet.json');

export const DEMO_USERS = [
  { username: 'testuser', password: 'testpassword', role: UserRole.Member },
  { username: 'admin', password: 'adminpassword', role: UserRole.Admin },
] as const;
