import { isoTime } from '../common/iso-time';
import { GpuResponseDto, GpuSharingModeDto, HostResponseDto, MigMode } from './dto/host.dto';
import { GpuEntity } from './gpu.entity';
import { HostEntity } from './host.entity';

export function toGpuResponse(gpu: GpuEntity): GpuResponseDto {
  return {
    id: gpu.id,
    index: gpu.index,
    model: gpu.model,
    product_name: gpu.productName,
    memory_mib: gpu.memoryMib,
    pci_address: gpu.pciAddress,
    uuid: gpu.uuid,
    mig_mode: gpu.migMode as MigMode,
    vm_id: gpu.vmId,
    sharing_mode: (gpu.sharingMode ?? 'passthrough') as GpuSharingModeDto,
    vgpu_profile: gpu.vgpuProfile ?? null,
    fractional_vms: gpu.liveClaims ?? 0,
  };
}

export function toHostResponse(host: HostEntity): HostResponseDto {
  return {
    id: host.id,
    name: host.name,
    region: host.region,
    state: host.state,
    labels: host.labels ?? [],
    cpu_cores: host.cpuCores,
    memory_mib: host.memoryMib,
    disk_gib: host.diskGib,
    hypervisor_uri: host.hypervisorUri ?? null,
    unreachable_since: host.unreachableSince ? isoTime(host.unreachableSince) : null,
    used: { cpu_cores: host.usedCpuCores, memory_mib: host.usedMemoryMib, disk_gib: host.usedDiskGib },
    gpus: (host.gpus ?? []).map(toGpuResponse),
    created_at: isoTime(host.createdAt),
    updated_at: isoTime(host.updatedAt),
  };
}
