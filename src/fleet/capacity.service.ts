import { Injectable } from '@nestjs/common';
import { UnitOfWork } from '../database/unit-of-work';
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
      return { items };
    });
  }
}
