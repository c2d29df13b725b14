import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { DomainError, HypervisorFaultError, HypervisorUnavailableError, InvalidStateError, NotFoundError } from '../common/domain-errors';
import { UnitOfWork } from '../database/unit-of-work';
import { HypervisorCallError } from '../hypervisor/hypervisor-errors';
import { HypervisorGateway } from '../hypervisor/hypervisor.gateway';
import { CONSOLE_DEFAULT_BYTES } from './dto/console.query';
import { VmStatus } from './vm.entity';
import { allowedActions } from './vm-state-machine';
import { targetOf } from './vm-target';
import { VmsRepository } from './vms.repository';

/** Reads the tail of a VM's serial console from its host, for its owner or an admin. */
@Injectable()
export class VmConsoleService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly gateway: HypervisorGateway,
  ) {}

  async tail(user: AuthUser, id: string, bytes = CONSOLE_DEFAULT_BYTES): Promise<string> {
    // The host is loaded for everyone: its URI is where the console is read, and it never reaches the response.
    const vm = await this.uow.read((tx) => this.vms.findVisible(tx, id, isAdmin(user) ? null : user.id, { host: true }));
    if (!vm) throw new NotFoundError('vm', id);
    // Only a VM that exists on a hypervisor has a console: not one being made, failed, shelved (no domain) or deleted.
    if (vm.status !== VmStatus.Created || !vm.hypervisorId) {
      throw new InvalidStateError('read the console of', vm.status, vm.powerState, allowedActions(vm.status, vm.powerState));
    }
    try {
      return await this.gateway.consoleTail(vm.hypervisorId, targetOf(vm), bytes);
    } catch (error) {
      if (error instanceof HypervisorCallError) throw consoleError(error, vm.id);
      throw error;
    }
  }
}

function consoleError(error: HypervisorCallError, vmId: string): DomainError {
  const { kind } = error.classified;
  const { message } = error;
  if (kind === 'host_unreachable' || kind === 'authentication' || kind === 'transient') {
    return new HypervisorUnavailableError(`The console cannot be read now: ${message}`, vmId);
  }
  return new HypervisorFaultError(`The console cannot be read: ${message}`, vmId);
}
