import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { InstallationEntity } from './installation.entity';

@Injectable()
export class InstallationRepository {
  constructor(@InjectRepository(InstallationEntity) private readonly installations: Repository<InstallationEntity>) {}

  /** Inserts `candidate` unless a row exists (replicas starting together race here), then returns the one row. */
  async ensure(tx: Tx, candidate: string): Promise<InstallationEntity> {
    const repo = on(this.installations, tx);
    await repo.createQueryBuilder().insert().values({ id: candidate, singleton: 1 }).orIgnore().updateEntity(false).execute();
    return (await repo.findOneBy({ singleton: 1 }))!;
  }
}
