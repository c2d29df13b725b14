import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SshKeyEntity } from './ssh-key.entity';
import { SshKeysController } from './ssh-keys.controller';
import { SshKeysRepository } from './ssh-keys.repository';
import { SshKeysService } from './ssh-keys.service';

@Module({
  imports: [TypeOrmModule.forFeature([SshKeyEntity])],
  controllers: [SshKeysController],
  providers: [SshKeysRepository, SshKeysService],
  exports: [SshKeysRepository],
})
export class SshKeysModule {}
