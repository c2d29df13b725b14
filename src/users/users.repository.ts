import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/unit-of-work';
import { UserEntity } from './user.entity';

export interface ResourceAmounts {
  vcpus: number;
  memoryMib: number;
  gpus: number;
  vms: number;
}

export interface QuotaLimits {
  vcpus?: number | null;
  memoryMib?: number | null;
  gpus?: number | null;
  vms?: number | null;
}

@Injectable()
export class UsersRepository {
  findByUsername(tx: Tx, username: string): Promise<UserEntity | null> {
    return tx.manager.findOneBy(UserEntity, { username });
  }

  findById(tx: Tx, id: string): Promise<UserEntity | null> {
    return tx.manager.findOneBy(UserEntity, { id });
  }

  async insert(tx: Tx, user: UserEntity): Promise<void> {
    await tx.manager.insert(UserEntity, user);
  }

  /** Changes only the quota columns given, never the usage counters another request may be changing. */
  async setQuota(tx: Tx, id: string, limits: QuotaLimits, updatedAt: Date): Promise<boolean> {
    const columns: [string, number | null | undefined][] = [
      ['quota_vcpus', limits.vcpus],
      ['quota_memory_mib', limits.memoryMib],
      ['quota_gpus', limits.gpus],
      ['quota_vms', limits.vms],
    ];
    const params: unknown[] = [id, tx.dialect.ts(updatedAt)];
    const sets = ['updated_at = $2'];
    for (const [column, value] of columns) {
      if (value === undefined) continue;
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    }
    return (await tx.run(`UPDATE users SET ${sets.join(', ')} WHERE id = $1`, params)) === 1;
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

}
