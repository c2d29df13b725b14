import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import { ConflictError, DomainError, NotFoundError, QuotaExceededError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';
import { milliGpuOf } from '../fleet/domain/gpu-profiles';
import { allTogether, settled, together } from '../database/statements-together';
import type { Tx } from '../database/unit-of-work';
import { PlacementPlan, PlacementService } from '../fleet/placement.service';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { effectiveQuota } from '../users/user.mapper';
import { ResourceAmounts, UsersRepository } from '../users/users.repository';
import { UsageEventKind } from './usage-event.entity';
import { UsageEventsRepository } from './usage-events.repository';
import { PowerState, type VmEntity } from './vm.entity';
import { VmsRepository } from './vms.repository';

/** What a VM takes from its owner's quota; a fractional GPU weighs its milli-GPUs (milliGpuOf). */
export function amountsOf(vm: Pick<VmEntity, 'cpuCores' | 'memory' | 'gpuCount'> & Partial<Pick<VmEntity, 'gpuProfile' | 'gpuModel'>>): ResourceAmounts {
  return { vcpus: vm.cpuCores, memoryMib: vm.memory, gpuMilli: milliGpuOf({ gpuCount: vm.gpuCount, gpuProfile: vm.gpuProfile, gpuModel: vm.gpuModel }), vms: 1 };
}

/**
 * What a VM holds while it lives — host capacity, GPUs and the owner's quota —
 * taken and given back in one place, with the metering events of the GPUs.
 *
 * A VM holds resources while its released_at is null: its quota always, and
 * its host and GPUs once it is placed (a VM waiting for capacity holds only
 * its quota).
 *
 * Lock order on PostgreSQL, for claims and releases alike: the host's row, its
 * GPUs, then the user's row. Mixing orders deadlocked under concurrent creates
 * and deletes by one user. Both are the last statements of their transaction,
 * so the contended rows are held for the fewest round trips before COMMIT.
 */
@Injectable()
export class VmResources {
  constructor(
    private readonly placement: PlacementService,
    private readonly users: UsersRepository,
    private readonly vms: VmsRepository,
    private readonly usage: UsageEventsRepository,
    private readonly config: AppConfig,
    private readonly clock: Clock,
  ) {}

  /**
   * Claims the plan and the quota for a VM whose row exists. Throws
   * PlacementConflictError when the plan went stale, and the quota error
   * when the user's quota no longer holds it.
   */
  async claim(tx: Tx, vm: VmEntity, plan: PlacementPlan, request: PlacementRequest, allocationIds: string[]): Promise<void> {
    // The host and its GPUs, then the user's row (the lock order), sent together (statements-together.ts). A
    // fractional plan's slots are claimed once the host has answered, so its user's row waits for them.
    const [placed, reserved] = await together(tx, [
      () => this.claimPlacement(tx, vm, plan, request, allocationIds),
      plan.slotClaim ? null : () => this.tryReserveQuota(tx, vm),
    ]);
    settled(placed);
    await this.assertReserved(tx, vm, settled(reserved) ?? (await this.tryReserveQuota(tx, vm)));
  }

  /** Claims the host capacity and GPUs of the plan (the quota is already held, e.g. by a VM that waited), with its metering event. */
  async claimPlacement(tx: Tx, vm: VmEntity, plan: PlacementPlan, request: PlacementRequest, allocationIds: string[]): Promise<void> {
    await allTogether(tx, [
      () => this.placement.claim(tx, vm.id, plan, request, allocationIds),
      () => this.usage.record(tx, { ...vm, gpuModel: plan.gpus[0]?.model ?? plan.slotClaim?.gpu.model ?? vm.gpuModel }, this.clock.now(), UsageEventKind.GpuClaim),
    ]);
  }

  /** Takes the VM's size from its owner's quota, or throws the quota it would exceed. */
  async reserveQuota(tx: Tx, vm: VmEntity): Promise<void> {
    await this.assertReserved(tx, vm, await this.tryReserveQuota(tx, vm));
  }

  private tryReserveQuota(tx: Tx, vm: VmEntity): Promise<boolean> {
    return this.users.tryConsume(tx, vm.ownerId, amountsOf(vm), this.config.quotaDefaults);
  }

  private async assertReserved(tx: Tx, vm: VmEntity, reserved: boolean): Promise<void> {
    if (!reserved) throw (await this.quotaError(tx, vm.ownerId, amountsOf(vm))) ?? new ConflictError('request_in_progress', 'Quota changed meanwhile; retry');
  }

  /** Gives back what the VM holds, once: only the caller that sets released_at does it. */
  async release(tx: Tx, vm: VmEntity, now: Date): Promise<boolean> {
    if (!(await this.vms.markReleased(tx, vm.id, now))) return false;
    await this.giveBack(tx, vm, now);
    return true;
  }

  /**
   * The VM is no longer on its hypervisor (found gone, removed by the reconciler, or deleted as a record
   * only): it has no power state any more, and if it was running its metering ends here.
   */
  async markGone(tx: Tx, vm: VmEntity, now: Date): Promise<void> {
    if (vm.powerState === PowerState.Unknown) return;
    vm.updatedAt = await this.vms.setPowerState(tx, vm.id, PowerState.Unknown);
    if (vm.powerState === PowerState.Running) await this.usage.record(tx, vm, now, UsageEventKind.PowerOff);
    vm.powerState = PowerState.Unknown;
  }

  /** The giving back itself, for callers that set released_at in the same conditional status change. */
  async giveBack(tx: Tx, vm: VmEntity, now: Date): Promise<void> {
    // Host, GPUs, then the user's row (the lock order), sent together (statements-together.ts); a fractional
    // VM's slots are given back once the host has answered, so its user's row waits for them.
    await allTogether(tx, [
      () => this.placement.release(tx, { ...vm, memoryMib: vm.memory, diskGib: vm.diskSize }, now),
      vm.gpuProfile ? null : () => this.users.release(tx, vm.ownerId, amountsOf(vm)),
      vm.hostId ? () => this.usage.record(tx, vm, now, UsageEventKind.GpuRelease) : null,
    ]);
    if (vm.gpuProfile) await this.users.release(tx, vm.ownerId, amountsOf(vm));
  }

  /** The quota this request would exceed, as a 403, or null if it fits. */
  async quotaError(tx: Tx, userId: string, amounts: ResourceAmounts): Promise<DomainError | null> {
    const user = await this.users.findById(tx, userId);
    if (!user) return new NotFoundError('user', userId);
    const quota = effectiveQuota(user, this.config.quotaDefaults);
    const checks: [string, number, number, number][] = [
      ['vms', quota.vms, user.usedVms, amounts.vms],
      ['vcpus', quota.vcpus, user.usedVcpus, amounts.vcpus],
      ['memory_mib', quota.memoryMib, user.usedMemoryMib, amounts.memoryMib],
      ['gpus', quota.gpuMilli, user.usedGpuMilli, amounts.gpuMilli],
    ];
    const over = checks.find(([, q, u, r]) => u + r > q);
    if (!over) return null;
    return over[0] === 'gpus' ? QuotaExceededError.gpus(over[1], over[2], over[3]) : new QuotaExceededError(over[0], over[1], over[2], over[3]);
  }

}
