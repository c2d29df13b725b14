import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { VmLabelEntity } from './vm-label.entity';
import { VmEntity } from './vm.entity';
import { UsageEventEntity } from './usage-event.entity';
import { UsageEventsRepository } from './usage-events.repository';
import { VmsRepository } from './vms.repository';

/** The VM aggregate's repository on its own, for modules that read VMs without driving them (operations, reconciler). */
@Module({
  imports: [TypeOrmModule.forFeature([VmEntity, VmLabelEntity, GpuAllocationEntity, GpuSlotClaimEntity, UsageEventEntity])],
  providers: [VmsRepository, UsageEventsRepository],
  exports: [VmsRepository, UsageEventsRepository],
})
export class VmRecordsModule {}
