import { Module } from '@nestjs/common';
import { FleetModule } from '../fleet/fleet.module';
import { UsersModule } from '../users/users.module';
import { InitialDataService } from './initial-data.service';

@Module({
  imports: [UsersModule, FleetModule],
  providers: [InitialDataService],
})
export class StartupModule {}
