import { FleetModule } from '../fleet/fleet.module';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { OperationsModule } from '../operations/operations.module';
import { VmModule } from '../vms/vms.module';
import { ReconcilerController } from './reconciler.controller';
import { ReconcilerService } from './reconciler.service';
import { ReconciliationRunEntity } from './reconciliation-run.entity';
import { ReconciliationRunsRepository } from './reconciliation-runs.repository';

@Module({
  imports: [TypeOrmModule.forFeature([ReconciliationRunEntity]), VmModule, OperationsModule, FleetModule],
  controllers: [ReconcilerController],
  providers: [ReconcilerService, ReconciliationRunsRepository],
})
export class ReconcilerModule {}
