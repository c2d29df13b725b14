import { Module, OnModuleInit } from '@nestjs/common';
import { UnitOfWork } from '../database/unit-of-work';
import { FleetModule } from '../fleet/fleet.module';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { MetricsService } from '../metrics/metrics.service';
import { OperationsModule } from '../operations/operations.module';
import { UsersModule } from '../users/users.module';
import { VmProvisioner } from './vm-provisioner';
import { VmsController } from './vms.controller';
import { VmsRepository } from './vms.repository';
import { VmsService } from './vms.service';

@Module({
  imports: [FleetModule, OperationsModule, UsersModule],
  controllers: [VmsController],
  providers: [VmsRepository, VmsService, VmProvisioner, IdempotencyRepository],
  exports: [VmsRepository, VmProvisioner, IdempotencyRepository],
})
export class VmModule implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
  ) {}

  onModuleInit(): void {
    this.metrics.addCollector(async () => {
      const counts = await this.uow.read((tx) => this.vms.countByStatus(tx));
      this.metrics.vmsByStatus.reset();
      for (const { status, count } of counts) this.metrics.vmsByStatus.set({ status }, count);
    });
  }
}
