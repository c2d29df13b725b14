import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { InstallationEntity } from './installation.entity';
import { InstallationRepository } from './installation.repository';
import { InstallationService } from './installation.service';

@Global()
@Module({
  imports: [TypeOrmModule.forFeature([InstallationEntity])],
  providers: [InstallationRepository, InstallationService],
  exports: [InstallationService],
})
export class InstallationModule {}
