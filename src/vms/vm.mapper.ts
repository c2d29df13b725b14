import { isoTime } from '../common/iso-time';
import { VmResponseDto } from './dto/vm-response.dto';
import type { VmView } from './vm-view';

/** The API's view of a VM, field by field; internals such as hypervisor_id stay out. */
export function toVmResponse(vm: VmView): VmResponseDto {
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
    owner_id: vm.ownerId,
    host: vm.hostName,
    region: vm.region,
    gpu_count: vm.gpuCount,
    gpu_model: vm.gpuModel,
    gpus: (vm.gpus ?? []).map((g) => ({ id: g.id, model: g.model, memory_mib: g.memoryMib, pci_address: g.pciAddress })),
    created_at: isoTime(vm.createdAt),
    updated_at: isoTime(vm.updatedAt),
    deleted_at: vm.deletedAt ? isoTime(vm.deletedAt) : null,
  };
}
