import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { VmRecordsModule } from '../vms/vm-records.module';
import { PasswordHasher } from './password-hasher';
import { Principals } from './principals';
import { UserEntity } from './user.entity';
import { UsersController } from './users.controller';
import { UsersRepository } from './users.repository';
import { UsersService } from './users.service';

@Module({
  imports: [TypeOrmModule.forFeature([UserEntity]), VmRecordsModule],
  controllers: [UsersController],
  providers: [UsersRepository, UsersService, PasswordHasher, Principals],
  exports: [UsersRepository, UsersService, PasswordHasher, Principals],
})
export class UsersModule {}
