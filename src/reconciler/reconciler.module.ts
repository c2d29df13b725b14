import { Module } from '@nestjs/common';
import { OperationsModule } from '../operations/operations.module';
import { VmModule } from '../vms/vms.module';
import { ReconcilerController } from './reconciler.controller';
import { ReconcilerService } from './reconciler.service';

@Module({
  imports: [VmModule, OperationsModule],
  controllers: [ReconcilerController],
  providers: [ReconcilerService],
})
export class ReconcilerModule {}
