import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { UnitOfWork } from '../database/unit-of-work';
import { OperationsRepository } from '../operations/operations.repository';
import { queueStats } from '../vms/capacity-queue';
import { CapacityResponseDto, GpuCapacityDto } from './dto/capacity.dto';
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
      const items: GpuCapacityDto[] = counts.map((c) => ({
        gpu_model: c.model,
        region: c.region,
        total: c.total,
        allocated: c.allocated,
        free: c.free,
        unavailable: c.unavailable,
        largest_placeable: largest.get(`${c.region}\u0000${c.model}`) ?? 0,
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
