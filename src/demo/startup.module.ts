import { Module } from '@nestjs/common';
import { FleetModule } from '../fleet/fleet.module';
import { UsersModule } from '../users/users.module';
import { StartupSeeder } from './startup-seeder';

@Module({ imports: [UsersModule, FleetModule], providers: [StartupSeeder] })
export class StartupModule {}
