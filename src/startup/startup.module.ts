import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { FleetModule } from '../fleet/fleet.module';
import { HostEntity } from '../fleet/host.entity';
import { UserEntity } from '../users/user.entity';
import { UsersModule } from '../users/users.module';
import { InitialDataService } from './initial-data.service';

@Module({ imports: [UsersModule, FleetModule, TypeOrmModule.forFeature([UserEntity, HostEntity])], providers: [InitialDataService] })
export class StartupModule {}
