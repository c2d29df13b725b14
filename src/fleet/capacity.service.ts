import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { UnitOfWork } from '../database/unit-of-work';
import { OperationsRepository } from '../operations/operations.repository';
import { queueStats } from '../vms/capacity-queue';
import { CapacityResponseDto, GpuCapacityDto } from './dto/capacity.dto';
import { profileCapacity } from '../scheduler/gpu-slots';
import type { SchedulerGpu, SchedulerHost } from '../scheduler/scheduler.types';
import { GpuProfile, migProfilesFor, VGPU_PROFILES } from './domain/gpu-profiles';
import { ProfileCapacityDto } from './dto/capacity.dto';
import { FleetRepository } from './fleet.repository';

/** The smallest VM the API accepts; a host that cannot take it cannot take any. */
const MINIMAL_VM = { cpuCores: 1, memoryMib: 256, diskGib: 1 };
const MAX_GPUS_PER_VM = 8;

@Injectable()
export class CapacityService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly fleet: FleetRepository,
    private readonly ops: OperationsRepository,
    private readonly clock: Clock,
  ) {}

  async gpuCapacity(): Promise<CapacityResponseDto> {
    return this.uow.read(async (tx) => {
      const counts = await this.fleet.gpuCounts(tx);
      const perHost = await this.fleet.freeGpusPerHost(tx, MINIMAL_VM);
      const largest = new Map<string, number>();
      for (const row of perHost) {
        const key = `${row.region}\u0000${row.model}`;
        largest.set(key, Math.max(largest.get(key) ?? 0, Math.min(MAX_GPUS_PER_VM, row.free)));
      }
      const profiles = profileCapacities(await this.fleet.loadCandidates(tx, MINIMAL_VM, null));
      const items: GpuCapacityDto[] = counts.map((c) => ({
        gpu_model: c.model,
        region: c.region,
        total: c.total,
        allocated: c.allocated,
        free: c.free,
        unavailable: c.unavailable,
        largest_placeable: largest.get(`${c.region}\u0000${c.model}`) ?? 0,
        profiles: profiles.get(`${c.region}\u0000${c.model}`) ?? [],
      }));
      const queues = queueStats(await this.ops.listWaiting(tx), this.clock.now()).map((q) => ({
        gpu_model: q.gpuModel,
        region: q.region,
        length: q.length,
        oldest_age_seconds: q.oldestAgeSeconds,
      }));
      return { items, queues };
    });
  }
}

/**
 * Per region and model, the profiles its shared GPUs (on active hosts with room for a VM) offer and how many of
 * each fit now, counted by the scheduler's own slot arithmetic (profileCapacity): the vGPU sizes when some GPU
 * is in vgpu mode, the model's MIG profiles when some GPU is in mig mode.
 */
function profileCapacities(hosts: readonly SchedulerHost[]): Map<string, ProfileCapacityDto[]> {
  const gpus = new Map<string, SchedulerGpu[]>();
  for (const host of hosts) {
    for (const gpu of host.gpus) {
      if (gpu.sharingMode === undefined || gpu.sharingMode === 'passthrough') continue;
      const key = `${host.region}\u0000${gpu.model}`;
      gpus.set(key, [...(gpus.get(key) ?? []), gpu]);
    }
  }
  const result = new Map<string, ProfileCapacityDto[]>();
  for (const [key, shared] of gpus) {
    const model = shared[0].model;
    const offered: GpuProfile[] = [
      ...(shared.some((g) => g.sharingMode === 'vgpu') ? VGPU_PROFILES : []),
      ...(shared.some((g) => g.sharingMode === 'mig') ? migProfilesFor(model) : []),
    ];
    result.set(
      key,
      offered.map((profile) => ({ profile: profile.name, placeable_now: profileCapacity(shared, profile.name, model), gpu_milli: profile.milliGpu })),
    );
  }
  return result;
}
