import { Module, OnModuleInit } from '@nestjs/common';
import { UnitOfWork } from '../database/unit-of-work';
import { MetricsService } from '../metrics/metrics.service';
import { CapacityController } from './capacity.controller';
import { CapacityService } from './capacity.service';
import { FleetRepository } from './fleet.repository';
import { FleetService } from './fleet.service';
import { HostsController } from './hosts.controller';
import { PlacementService } from './placement.service';

@Module({
  controllers: [HostsController, CapacityController],
  providers: [FleetRepository, FleetService, PlacementService, CapacityService],
  exports: [FleetRepository, FleetService, PlacementService],
})
export class FleetModule implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly uow: UnitOfWork,
    private readonly fleet: FleetRepository,
  ) {}

  onModuleInit(): void {
    this.metrics.addCollector(async () => {
      const counts = await this.uow.read((tx) => this.fleet.gpuCounts(tx));
      this.metrics.gpus.reset();
      const byModel = new Map<string, { allocated: number; free: number }>();
      for (const c of counts) {
        const entry = byModel.get(c.model) ?? { allocated: 0, free: 0 };
        entry.allocated += c.allocated;
        entry.free += c.total - c.allocated;
        byModel.set(c.model, entry);
      }
      for (const [model, { allocated, free }] of byModel) {
        this.metrics.gpus.set({ model, state: 'allocated' }, allocated);
        this.metrics.gpus.set({ model, state: 'free' }, free);
      }
    });
  }
}
