import { GpuSlotClaimEntity } from './gpu-slot-claim.entity';
import { Module, OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { OperationsModule } from '../operations/operations.module';
import { VmRecordsModule } from '../vms/vm-records.module';
import { UnitOfWork } from '../database/unit-of-work';
import { MetricsService } from '../metrics/metrics.service';
import { CapacityController } from './capacity.controller';
import { CapacityService } from './capacity.service';
import { FleetRepository } from './fleet.repository';
import { FleetService } from './fleet.service';
import { GpuAllocationEntity } from './gpu-allocation.entity';
import { GpuEntity } from './gpu.entity';
import { HostEntity } from './host.entity';
import { HostsController } from './hosts.controller';
import { PlacementService } from './placement.service';

@Module({
  imports: [TypeOrmModule.forFeature([HostEntity, GpuEntity, GpuAllocationEntity, GpuSlotClaimEntity]), OperationsModule, VmRecordsModule],
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
      this.metrics.hostsUnreachable.set(await this.uow.read((tx) => this.fleet.countUnreachable(tx)));
    });
    this.metrics.addCollector(async () => {
      const counts = await this.uow.read((tx) => this.fleet.gpuCounts(tx));
      this.metrics.gpus.reset();
      // The same three states GET /capacity reports: free means placeable now (on an active host).
      const byModel = new Map<string, { allocated: number; free: number; unavailable: number }>();
      for (const c of counts) {
        const entry = byModel.get(c.model) ?? { allocated: 0, free: 0, unavailable: 0 };
        entry.allocated += c.allocated;
        entry.free += c.free;
        entry.unavailable += c.unavailable;
        byModel.set(c.model, entry);
      }
      for (const [model, counts] of byModel) {
        for (const [state, value] of Object.entries(counts)) this.metrics.gpus.set({ model, state }, value);
      }
    });
  }
}
