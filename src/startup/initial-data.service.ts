import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { readFleetFile } from '../fleet/fleet-file';
import { FleetService } from '../fleet/fleet.service';
import { FleetRepository } from '../fleet/fleet.repository';
import { UnitOfWork } from '../database/unit-of-work';
import { UserRole } from '../common/user-role';
import { UsersRepository } from '../users/users.repository';
import { UsersService } from '../users/users.service';
import { DEMO_FLEET_FILE, DEMO_USERS } from './demo-data';

export const NO_USERS_MESSAGE =
  'No users yet, so nobody can sign in: set ADMIN_USERNAME and ADMIN_PASSWORD and restart to create the first admin, who can then add users with POST /users';
export const NO_HOSTS_MESSAGE =
  'No hosts yet, so no VM can be placed: register them with POST /hosts or POST /hosts/import (the XML of nvidia-smi -q -x), or list them in the file named by FLEET_FILE (docs/fleet-file.md)';

/**
 * The data a server starts with, in production too: the hosts of FLEET_FILE and the
 * ADMIN_USERNAME admin; in demo mode also the demo users and the demo fleet. Idempotent:
 * restarts keep what exists. Then it says what is still missing for a first VM.
 */
@Injectable()
export class InitialDataService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Startup');

  constructor(
    private readonly config: AppConfig,
    private readonly users: UsersService,
    private readonly fleet: FleetService,
    private readonly uow: UnitOfWork,
    private readonly userRecords: UsersRepository,
    private readonly hostRecords: FleetRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const fleetNote = await this.loadFleetFile();
    const admin = this.config.bootstrapAdmin;
    if (admin) await this.users.ensure(admin.username, admin.password, UserRole.Admin);
    if (this.config.demo) {
      for (const user of DEMO_USERS) await this.users.ensure(user.username, user.password, user.role);
      this.logger.warn(
        `DEMO MODE: users testuser/testpassword (member) and admin/adminpassword (admin); ${fleetNote}; ${this.config.demoNotes.join('; ')}. Never use demo mode in production.`,
      );
    } else if (fleetNote) {
      this.logger.log(`Loaded ${fleetNote}`);
    }
    const { users, hosts } = await this.uow.read(async (tx) => ({ users: await this.userRecords.any(tx), hosts: await this.hostRecords.anyHost(tx) }));
    if (!users) this.logger.warn(NO_USERS_MESSAGE);
    if (!hosts) this.logger.warn(NO_HOSTS_MESSAGE);
  }

  private async loadFleetFile(): Promise<string> {
    const fleetFile = this.config.fleetFile ?? (this.config.demo ? DEMO_FLEET_FILE : null);
    if (!fleetFile) return '';
    const hosts = readFleetFile(fleetFile);
    const added = await this.fleet.ensureHosts(hosts);
    const gpus = hosts.reduce((n, h) => n + (h.gpus?.length ?? 0), 0);
    return `fleet from ${fleetFile} (${hosts.length} hosts, ${gpus} GPUs, ${added} newly registered)`;
  }
}
