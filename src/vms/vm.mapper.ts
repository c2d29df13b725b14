import { isoTime } from '../common/iso-time';
import { VmResponseDto } from './dto/vm-response.dto';
import type { VmEntity } from './vm.entity';

/** Whether the reader may see the fleet behind a VM (host names are admin-only, as /hosts is). */
export interface VmViewer {
  seesFleet: boolean;
}

/** The API's view of a VM, field by field; internals such as hypervisor_id stay out. */
export function toVmResponse(vm: VmEntity, viewer: VmViewer): VmResponseDto {
  return {
    id: vm.id,
    name: vm.name,
    cpu_cores: vm.cpuCores,
    memory: vm.memory,
    disk_size: vm.diskSize,
    public_ip: vm.publicIp,
    labels: vm.labels,
    status: vm.status,
    status_reason: vm.statusReason,
    power_state: vm.powerState,
    owner_id: vm.ownerId,
    host: viewer.seesFleet ? (vm.host?.name ?? null) : null,
    region: vm.region,
    gpu_count: vm.gpuCount,
    gpu_model: vm.gpuModel,
    gpus: (vm.allocations ?? []).map(({ gpu }) => ({ id: gpu!.id, model: gpu!.model, memory_mib: gpu!.memoryMib, pci_address: gpu!.pciAddress })),
    image: vm.image ?? null,
    ssh_keys: (vm.sshKeys ?? []).map((key) => ({ name: key.name, fingerprint: key.fingerprint })),
    user_data_bytes: vm.userData ? Buffer.byteLength(vm.userData, 'utf8') : 0,
    created_at: isoTime(vm.createdAt),
    updated_at: isoTime(vm.updatedAt),
    deleted_at: vm.deletedAt ? isoTime(vm.deletedAt) : null,
  };
}
