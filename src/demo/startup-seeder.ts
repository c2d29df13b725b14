import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { join } from 'node:path';
import { projectRoot } from '../common/project-root';
import { AppConfig } from '../config/app-config';
import { readFleetFile } from '../fleet/fleet-file';
import { FleetService } from '../fleet/fleet.service';
import { UserRole } from '../common/user-role';
import { UsersService } from '../users/users.service';

export const DEMO_FLEET_FILE = join(projectRoot(), 'fleet', 'demo-fleet.json');

export const DEMO_USERS = [
  { username: 'testuser', password: 'testpassword', role: UserRole.Member },
  { username: 'admin', password: 'adminpassword', role: UserRole.Admin },
] as const;

/**
 * Loads FLEET_FILE when set and ensures the ADMIN_USERNAME admin; in demo
 * mode also the demo users and the demo fleet. Idempotent: restarts keep
 * what exists.
 */
@Injectable()
export class StartupSeeder implements OnApplicationBootstrap {
  private readonly logger = new Logger('Startup');

  constructor(
    private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly fleet: FleetService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const fleetFile = this.config.fleetFile ?? (this.config.demo ? DEMO_FLEET_FILE : null);
    let fleetNote = '';
    if (fleetFile) {
      const hosts = readFleetFile(fleetFile);
      const added = await this.fleet.ensureHosts(hosts);
      const gpus = hosts.reduce((n, h) => n + (h.gpus?.length ?? 0), 0);
      fleetNote = `fleet from ${fleetFile} (${hosts.length} hosts, ${gpus} GPUs, ${added} newly registered)`;
    }
    const admin = this.config.bootstrapAdmin;
    if (admin) await this.users.ensure(admin.username, admin.password, UserRole.Admin);
    if (!this.config.demo) {
      if (fleetNote) this.logger.log(`Loaded ${fleetNote}`);
      return;
    }
    for (const user of DEMO_USERS) await this.users.ensure(user.username, user.password, user.role);
    this.logger.warn(
      `DEMO MODE: users testuser/testpassword (member) and admin/adminpassword (admin); ${fleetNote}; ${this.config.demoNotes.join('; ')}. Never use demo mode in production.`,
    );
  }
}
