import { Module } from '@nestjs/common';
import { UsersModule } from '../users/users.module';
import { VmRecordsModule } from '../vms/vm-records.module';
import { UsageController } from './usage.controller';
import { UsageService } from './usage.service';

/** Usage reports, read from the metering events the VM lifecycle appends. */
@Module({
  imports: [VmRecordsModule, UsersModule],
  controllers: [UsageController],
  providers: [UsageService],
})
export class UsageModule {}
