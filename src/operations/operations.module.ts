import { Module, OnModuleInit } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UnitOfWork } from '../database/unit-of-work';
import { MetricsService } from '../metrics/metrics.service';
import { VmRecordsModule } from '../vms/vm-records.module';
import { OPEN_STATUSES, OperationEntity, OperationStatus } from './operation.entity';
import { OperationWaiter } from './operation-waiter';
import { OperationWorker } from './operation-worker';
import { OperationsController } from './operations.controller';
import { OperationsRepository } from './operations.repository';
import { OperationsService } from './operations.service';

@Module({
  imports: [TypeOrmModule.forFeature([OperationEntity]), VmRecordsModule],
  controllers: [OperationsController],
  providers: [OperationsRepository, OperationsService, OperationWorker, OperationWaiter],
  exports: [OperationsRepository, OperationWorker, OperationWaiter],
})
export class OperationsModule implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly uow: UnitOfWork,
    private readonly ops: OperationsRepository,
  ) {}

  onModuleInit(): void {
    this.metrics.addCollector(async () => {
      const [counts, waiting] = await this.uow.read((tx) => Promise.all([this.ops.countOpen(tx), this.ops.countWaiting(tx)]));
      for (const status of OPEN_STATUSES) this.metrics.operationQueue.set({ status }, counts.find((c) => c.status === status)?.count ?? 0);
      this.metrics.operationQueue.set({ status: OperationStatus.WaitingForCapacity }, waiting);
    });
  }
}
