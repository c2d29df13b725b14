import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { SshKeyEntity } from './ssh-key.entity';

/** Each user's keys; every read is scoped to the owner, so no caller can reach another user's key by mistake. */
@Injectable()
export class SshKeysRepository {
  constructor(@InjectRepository(SshKeyEntity) private readonly keys: Repository<SshKeyEntity>) {}

  async insert(tx: Tx, key: SshKeyEntity): Promise<void> {
    await on(this.keys, tx).createQueryBuilder().insert().values(key).updateEntity(false).execute();
  }

  countByOwner(tx: Tx, ownerId: string): Promise<number> {
    return on(this.keys, tx).countBy({ ownerId });
  }

  existsByName(tx: Tx, ownerId: string, name: string): Promise<boolean> {
    return on(this.keys, tx).existsBy({ ownerId, name });
  }

  listByOwner(tx: Tx, ownerId: string, limit: number): Promise<SshKeyEntity[]> {
    return on(this.keys, tx).find({ where: { ownerId }, order: { name: 'ASC' }, take: limit });
  }

  /** The owner's keys with these names (those that exist). */
  findByNames(tx: Tx, ownerId: string, names: string[]): Promise<SshKeyEntity[]> {
    if (names.length === 0) return Promise.resolve([]);
    return on(this.keys, tx).findBy({ ownerId, name: In(names) });
  }

  /** Deletes the key if `ownerId` owns it; false otherwise (as if it did not exist). */
  async delete(tx: Tx, ownerId: string, id: string): Promise<boolean> {
    const result = await on(this.keys, tx).delete({ id, ownerId });
    return result.affected === 1;
  }
}
