import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import type { Tx } from '../database/unit-of-work';
import { UserEntity } from './user.entity';

export interface ResourceAmounts {
  vcpus: number;
  memoryMib: number;
  gpus: number;
  vms: number;
}

@Injectable()
export class UsersRepository {
  constructor(@InjectRepository(UserEntity) private readonly repo: Repository<UserEntity>) {}

  findByUsername(username: string): Promise<UserEntity | null> {
    return this.repo.findOneBy({ username });
  }

  findById(id: string): Promise<UserEntity | null> {
    return this.repo.findOneBy({ id });
  }

  insert(user: UserEntity): Promise<unknown> {
    return this.repo.insert(user);
  }

  save(user: UserEntity): Promise<UserEntity> {
    return this.repo.save(user);
  }

  /**
   * Adds to the user's usage only if every limit still holds, in one
   * conditional UPDATE, so concurrent requests cannot overrun a quota.
   */
  async tryConsume(tx: Tx, userId: string, amounts: ResourceAmounts, defaults: ResourceAmounts, now: Date): Promise<boolean> {
    const changed = await tx.run(
      `UPDATE users SET used_vcpus = used_vcpus + $2, used_memory_mib = used_memory_mib + $3,
         used_gpus = used_gpus + $4, used_vms = used_vms + $5, updated_at = $10
       WHERE id = $1
         AND used_vcpus + $2 <= COALESCE(quota_vcpus, $6)
         AND used_memory_mib + $3 <= COALESCE(quota_memory_mib, $7)
         AND used_gpus + $4 <= COALESCE(quota_gpus, $8)
         AND used_vms + $5 <= COALESCE(quota_vms, $9)`,
      [
        userId,
        amounts.vcpus,
        amounts.memoryMib,
        amounts.gpus,
        amounts.vms,
        defaults.vcpus,
        defaults.memoryMib,
        defaults.gpus,
        defaults.vms,
        tx.dialect.ts(now),
      ],
    );
    return changed === 1;
  }

  async release(tx: Tx, userId: string, amounts: ResourceAmounts, now: Date): Promise<void> {
    await tx.run(
      `UPDATE users SET used_vcpus = used_vcpus - $2, used_memory_mib = used_memory_mib - $3,
         used_gpus = used_gpus - $4, used_vms = used_vms - $5, updated_at = $6
       WHERE id = $1`,
      [userId, amounts.vcpus, amounts.memoryMib, amounts.gpus, amounts.vms, tx.dialect.ts(now)],
    );
  }

  async findForQuota(tx: Tx, userId: string): Promise<UserEntity | null> {
    return tx.manager.findOneBy(UserEntity, { id: userId });
  }
}
