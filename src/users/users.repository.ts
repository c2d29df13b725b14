import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Repository } from 'typeorm';
import { UserRole } from '../common/user-role';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { UserEntity } from './user.entity';

/** What a VM holds of its owner's quota. GPUs count in milli-GPUs (a whole GPU is 1000, see milliGpuOf). */
export interface ResourceAmounts {
  vcpus: number;
  memoryMib: number;
  gpuMilli: number;
  vms: number;
}

/** The configured default limits (QUOTA_*), GPUs in whole GPUs as operators write them. */
export interface QuotaDefaults {
  vcpus: number;
  memoryMib: number;
  gpus: number;
  vms: number;
}

export function defaultLimits(defaults: QuotaDefaults): ResourceAmounts {
  return { vcpus: defaults.vcpus, memoryMib: defaults.memoryMib, gpuMilli: defaults.gpus * 1000, vms: defaults.vms };
}

export interface QuotaLimits {
  vcpus?: number | null;
  memoryMib?: number | null;
  gpuMilli?: number | null;
  vms?: number | null;
}

/** Users, their quota limits and their usage counters (one row per user, so users never contend with each other). */
@Injectable()
export class UsersRepository {
  constructor(
    @InjectRepository(UserEntity) private readonly users: Repository<UserEntity>,
    private readonly statements: PreparedStatements,
  ) {}

  findByUsername(tx: Tx, username: string): Promise<UserEntity | null> {
    return on(this.users, tx).findOneBy({ username });
  }

  async findById(tx: Tx, id: string): Promise<UserEntity | null> {
    const [user] = await this.statements.select(tx, this.users.target, 'u', 'byId', { id }, (qb) => qb.where('u.id = :id'));
    return user ?? null;
  }

  /** Whether anyone can sign in at all. */
  any(tx: Tx): Promise<boolean> {
    return on(this.users, tx).exists({ where: { deletedAt: IsNull(), disabledAt: IsNull() } });
  }

  /** Users not deleted, by id (time-ordered), keyset-paginated. */
  list(tx: Tx, beforeId: string | null, limit: number): Promise<UserEntity[]> {
    const qb = on(this.users, tx).createQueryBuilder('u').where('u.deletedAt IS NULL');
    if (beforeId) qb.andWhere('u.id < :beforeId', { beforeId });
    return qb.orderBy('u.id', 'DESC').limit(limit).getMany();
  }

  /** Admins who can still sign in. */
  countActiveAdmins(tx: Tx): Promise<number> {
    return on(this.users, tx).countBy({ role: UserRole.Admin, disabledAt: IsNull(), deletedAt: IsNull() });
  }

  /**
   * Changes the user's role, status or password. `revoke` also bumps the
   * token version, so every token issued before stops working.
   */
  async update(tx: Tx, id: string, changes: Partial<Pick<UserEntity, 'role' | 'disabledAt' | 'deletedAt' | 'passwordHash'>>, revoke: boolean): Promise<boolean> {
    const qb = on(this.users, tx).createQueryBuilder().update().set(revoke ? { ...changes, tokenVersion: () => 'token_version + 1' } : changes);
    const result = await qb.where('id = :id', { id }).andWhere('deleted_at IS NULL').updateEntity(false).execute();
    return result.affected === 1;
  }

  async insert(tx: Tx, user: UserEntity): Promise<void> {
    await on(this.users, tx).createQueryBuilder().insert().values(user).updateEntity(false).execute();
  }

  /** Changes only the quota columns given, never the usage counters another request may be changing. */
  async setQuota(tx: Tx, id: string, limits: QuotaLimits): Promise<boolean> {
    const values: Partial<UserEntity> = {};
    if (limits.vcpus !== undefined) values.quotaVcpus = limits.vcpus;
    if (limits.memoryMib !== undefined) values.quotaMemoryMib = limits.memoryMib;
    if (limits.gpuMilli !== undefined) values.quotaGpuMilli = limits.gpuMilli;
    if (limits.vms !== undefined) values.quotaVms = limits.vms;
    const result = await on(this.users, tx).update({ id }, values);
    return result.affected === 1;
  }

  /**
   * Adds to the user's usage only if every limit still holds, in one
   * conditional UPDATE, so concurrent requests cannot overrun a quota.
   */
  async tryConsume(tx: Tx, userId: string, amounts: ResourceAmounts, defaults: QuotaDefaults): Promise<boolean> {
    const params = {
      userId,
      ...usage(amounts),
      defaultVcpus: defaults.vcpus,
      defaultMemory: defaults.memoryMib,
      defaultGpus: defaultLimits(defaults).gpuMilli,
      defaultVms: defaults.vms,
    };
    const { affected } = await this.statements.update(tx, this.users.target, 'consume', params, (qb) =>
      qb
        .set({
          usedVcpus: () => 'used_vcpus + :vcpus',
          usedMemoryMib: () => 'used_memory_mib + :memory',
          usedGpuMilli: () => 'used_gpu_milli + :gpus',
          usedVms: () => 'used_vms + :vms',
        })
        .where('id = :userId')
        .andWhere('used_vcpus + :vcpus <= COALESCE(quota_vcpus, :defaultVcpus)')
        .andWhere('used_memory_mib + :memory <= COALESCE(quota_memory_mib, :defaultMemory)')
        .andWhere('used_gpu_milli + :gpus <= COALESCE(quota_gpu_milli, :defaultGpus)')
        .andWhere('used_vms + :vms <= COALESCE(quota_vms, :defaultVms)'),
    );
    return affected === 1;
  }

  async release(tx: Tx, userId: string, amounts: ResourceAmounts): Promise<void> {
    await this.statements.update(tx, this.users.target, 'release', { userId, ...usage(amounts) }, (qb) =>
      qb
        .set({
          usedVcpus: () => 'used_vcpus - :vcpus',
          usedMemoryMib: () => 'used_memory_mib - :memory',
          usedGpuMilli: () => 'used_gpu_milli - :gpus',
          usedVms: () => 'used_vms - :vms',
        })
        .where('id = :userId'),
    );
  }
}

function usage(amounts: ResourceAmounts): { vcpus: number; memory: number; gpus: number; vms: number } {
  return { vcpus: amounts.vcpus, memory: amounts.memoryMib, gpus: amounts.gpuMilli, vms: amounts.vms };
}
