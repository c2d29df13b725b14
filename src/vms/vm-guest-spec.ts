import { Injectable } from '@nestjs/common';
import type { CreateVmRequest, HypervisorTarget } from '@vmplane/sdk';
import { UnitOfWork } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import { toImageRef } from '../images/image.mapper';
import { VM_ID_LABEL_PREFIX } from '../hypervisor/hypervisor.constants';
import { ImagesRepository } from '../images/images.repository';
import type { VmEntity } from './vm.entity';
import { gpuDevicesOf } from './vm-gpu-devices';

/** What the guest is made of beyond its size: the parts of a create (or unshelve) request that come from other rows. */
export type GuestSpec = Required<Pick<CreateVmRequest, 'uri' | 'image' | 'userData' | 'sshKeys'>>;

/**
 * Reads what a VM's create or unshelve needs besides the VM row: its image
 * (name → file), and its host's libvirt URI.
 */
@Injectable()
export class VmGuestSpecs {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly fleet: FleetRepository,
    private readonly images: ImagesRepository,
  ) {}

  /** Where the VM is: a shelved VM's disk, or its host by name and URI. */
  async targetOf(vm: VmEntity): Promise<HypervisorTarget> {
    if (vm.diskRef) return { host: vm.diskRef.host, uri: vm.diskRef.uri };
    const known = knownUri(vm);
    const uri = known !== undefined ? known : vm.hostId ? await this.uow.read((tx) => this.fleet.hypervisorUriOf(tx, vm.hostId!)) : null;
    return { host: vm.host?.name ?? null, uri: uri ?? null };
  }

  /** The SDK request that creates (or, with the VM's diskRef added, unshelves) the VM as its row describes it. */
  async requestOf(vm: VmEntity, installationId: string): Promise<CreateVmRequest> {
    const gpuDevices = gpuDevicesOf(vm);
    return {
      ...(await this.of(vm)),
      name: vm.name,
      cpuCores: vm.cpuCores,
      memory: vm.memory,
      diskSize: vm.diskSize,
      publicIp: vm.publicIp,
      labels: [...vm.labels, `${VM_ID_LABEL_PREFIX}${vm.id}`],
      host: vm.host?.name ?? null,
      gpus: gpuDevices.map((d) => d.uuid),
      gpuDevices,
      metadata: { installationId, vmId: vm.id, ownerId: vm.ownerId },
    };
  }

  async of(vm: VmEntity): Promise<GuestSpec> {
    const known = knownUri(vm);
    const needsRead = (known === undefined && vm.hostId) || vm.image;
    const { uri, image } = !needsRead
      ? { uri: known ?? null, image: null }
      : await this.uow.read(async (tx) => ({
          uri: known !== undefined ? known : vm.hostId ? await this.fleet.hypervisorUriOf(tx, vm.hostId) : null,
          image: vm.image ? await this.images.findByName(tx, vm.image) : null,
        }));
    return {
      uri: uri ?? null,
      image: image ? toImageRef(image) : null,
      userData: vm.userData ?? null,
      sshKeys: (vm.sshKeys ?? []).map((key) => key.publicKey),
    };
  }
}

/**
 * The host URI the VM object already carries, read in the same transaction
 * as its placement (a create's plan) or its row (a read joined with its
 * host); undefined when it carries none, or a host other than the one it is
 * placed on now (a member's read has no host; an unshelve or a queued
 * create places the VM after it was read), and the host's row must be read.
 */
function knownUri(vm: VmEntity): string | null | undefined {
  if (!vm.hostId) return null;
  return vm.host && vm.host.id === vm.hostId ? vm.host.hypervisorUri : undefined;
}
