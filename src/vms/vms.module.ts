import { Module, OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UnitOfWork } from '../database/unit-of-work';
import { FleetModule } from '../fleet/fleet.module';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { MetricsService } from '../metrics/metrics.service';
import { OperationsModule } from '../operations/operations.module';
import { UsersModule } from '../users/users.module';
import { ImagesModule } from '../images/images.module';
import { SshKeysModule } from '../ssh-keys/ssh-keys.module';
import { VmRecordsModule } from './vm-records.module';
import { CapacityQueueService } from './capacity-queue.service';
import { VmActionsController } from './vm-actions.controller';
import { VmActionsService } from './vm-actions.service';
import { VmLifecycleHandler } from './vm-lifecycle.handler';
import { VmOperationRunner } from './vm-operation-runner';
import { VmProvisioner } from './vm-provisioner';
import { VmGuestSpecs } from './vm-guest-spec';
import { VmConsoleService } from './vm-console.service';
import { VmResources } from './vm-resources.service';
import { VmsController } from './vms.controller';
import { VmsRepository } from './vms.repository';
import { VmsService } from './vms.service';

@Module({
  imports: [TypeOrmModule.forFeature([IdempotencyKeyEntity]), VmRecordsModule, FleetModule, OperationsModule, UsersModule, ImagesModule, SshKeysModule],
  controllers: [VmsController, VmActionsController],
  providers: [VmsService, VmActionsService, VmOperationRunner, VmProvisioner, VmLifecycleHandler, VmGuestSpecs, VmConsoleService, VmResources, CapacityQueueService, IdempotencyRepository],
  exports: [VmRecordsModule, VmResources, CapacityQueueService, IdempotencyRepository],
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
