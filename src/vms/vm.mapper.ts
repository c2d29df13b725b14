import { isoTime } from '../common/iso-time';
import { VmResponseDto } from './dto/vm-response.dto';
import type { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import type { GpuEntity } from '../fleet/gpu.entity';
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
    gpu_profile: vm.gpuProfile ?? null,
    gpus: [
      ...(vm.allocations ?? []).map(({ gpu }) => ({ ...gpuFields(gpu!), slots: null })),
      ...slotsHeld(vm.slotClaims ?? []).map(({ gpu, slots }) => ({ ...gpuFields(gpu), slots })),
    ],
    image: vm.image ?? null,
    ssh_keys: (vm.sshKeys ?? []).map((key) => ({ name: key.name, fingerprint: key.fingerprint })),
    user_data_bytes: vm.userData ? Buffer.byteLength(vm.userData, 'utf8') : 0,
    created_at: isoTime(vm.createdAt),
    updated_at: isoTime(vm.updatedAt),
    deleted_at: vm.deletedAt ? isoTime(vm.deletedAt) : null,
  };
}

function gpuFields(gpu: GpuEntity): { id: string; model: string; memory_mib: number; pci_address: string; uuid: string; index: number } {
  return { id: gpu.id, model: gpu.model, memory_mib: gpu.memoryMib, pci_address: gpu.pciAddress, uuid: gpu.uuid, index: gpu.index };
}

/**
 * The GPU and slots a fractional VM holds: its live claim rows, or for a VM that holds none now (shelved,
 * deleted) the ones it held last, so the record still says where it ran.
 */
function slotsHeld(claims: readonly GpuSlotClaimEntity[]): { gpu: GpuEntity; slots: number[] }[] {
  if (claims.length === 0) return [];
  const live = claims.filter((c) => c.releasedAt === null);
  const last = live.length > 0 ? live : claims.filter((c) => c.releasedAt?.getTime() === Math.max(...claims.map((x) => x.releasedAt?.getTime() ?? 0)));
  const byGpu = new Map<string, { gpu: GpuEntity; slots: number[] }>();
  for (const claim of last) {
    const entry = byGpu.get(claim.gpuId) ?? { gpu: claim.gpu!, slots: [] };
    entry.slots.push(claim.slot);
    byGpu.set(claim.gpuId, entry);
  }
  return [...byGpu.values()].map(({ gpu, slots }) => ({ gpu, slots: slots.sort((a, b) => a - b) }));
}
