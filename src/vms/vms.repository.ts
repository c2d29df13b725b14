import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Brackets, In, IsNull, Repository } from 'typeorm';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { VmLabelEntity } from './vm-label.entity';
import { VmEntity, VmStatus } from './vm.entity';
import { VmEvent, transitionOf } from './vm-state-machine';

export interface VmListFilter {
  ownerId: string | null;
  status: VmStatus | null;
  label: string | null;
  beforeId: string | null;
  limit: number;
}

/** What else a status change writes; `releasedAt` is written only while it is still null, so resources go back once. */
export type VmChanges = Partial<Pick<VmEntity, 'statusReason' | 'hypervisorId' | 'deletedAt' | 'releasedAt'>>;

/** How a conditional status change ended: applied, or lost to a concurrent change the caller must handle. */
export type TransitionResult = { applied: true; updatedAt: Date } | { applied: false };

export interface VmReadOptions {
  /** Load the GPUs the VM holds or held (only for VMs with GPUs). */
  gpus?: boolean;
  /** Load the host's row, for readers who may see the fleet. */
  host?: boolean;
}

/** The VM aggregate: the vms row, its labels, and its GPU allocations (read side). */
@Injectable()
export class VmsRepository {
  constructor(
    @InjectRepository(VmEntity) private readonly vms: Repository<VmEntity>,
    @InjectRepository(VmLabelEntity) private readonly labels: Repository<VmLabelEntity>,
    @InjectRepository(GpuAllocationEntity) private readonly allocations: Repository<GpuAllocationEntity>,
  ) {}

  /** Inserts the VM and its label rows; the timestamp columns are stamped on `vm` itself. */
  async insert(tx: Tx, vm: VmEntity): Promise<void> {
    await on(this.vms, tx).createQueryBuilder().insert().values(vm).updateEntity(false).execute();
    const labels = [...new Set(vm.labels)].map((label) => ({ vmId: vm.id, label }));
    if (labels.length > 0) await on(this.labels, tx).createQueryBuilder().insert().values(labels).updateEntity(false).execute();
  }

  async findById(tx: Tx, id: string, options: VmReadOptions = {}): Promise<VmEntity | null> {
    const qb = on(this.vms, tx).createQueryBuilder('v').where('v.id = :id', { id });
    if (options.host) qb.leftJoinAndSelect('v.host', 'h');
    const vm = await qb.getOne();
    if (vm && options.gpus) await this.attachGpus(tx, [vm]);
    return vm;
  }

  /** The VM if `ownerId` owns it (or `ownerId` is null: an admin); otherwise null, as if it did not exist. */
  async findVisible(tx: Tx, id: string, ownerId: string | null, options: VmReadOptions = {}): Promise<VmEntity | null> {
    const vm = await this.findById(tx, id, options);
    return vm && (ownerId === null || vm.ownerId === ownerId) ? vm : null;
  }

  /**
   * Newest first, by id (UUIDv7 ids are time-ordered); keyset pagination with
   * `beforeId`. Without a status filter, deleted VMs and requests refused at
   * admission (failed, never placed) are left out.
   */
  async list(tx: Tx, filter: VmListFilter, options: VmReadOptions = {}): Promise<VmEntity[]> {
    const qb = on(this.vms, tx).createQueryBuilder('v');
    if (filter.ownerId) qb.andWhere('v.ownerId = :ownerId', { ownerId: filter.ownerId });
    if (filter.status) qb.andWhere('v.status = :status', { status: filter.status });
    else {
      qb.andWhere('v.status <> :deleted', { deleted: VmStatus.Deleted }).andWhere(
        new Brackets((w) => w.where('v.status <> :failed', { failed: VmStatus.Failed }).orWhere('v.hostId IS NOT NULL')),
      );
    }
    if (filter.label) {
      qb.andWhere(
        `EXISTS ${qb.subQuery().select('1').from(VmLabelEntity, 'l').where('l.vmId = v.id').andWhere('l.label = :label').getQuery()}`,
        { label: filter.label },
      );
    }
    if (filter.beforeId) qb.andWhere('v.id < :beforeId', { beforeId: filter.beforeId });
    if (options.host) qb.leftJoinAndSelect('v.host', 'h');
    const vms = await qb.orderBy('v.id', 'DESC').limit(filter.limit).getMany();
    if (options.gpus) await this.attachGpus(tx, vms);
    return vms;
  }

  async publicIpInUse(tx: Tx, publicIp: string): Promise<boolean> {
    return on(this.vms, tx).exists({ where: { publicIp, releasedAt: IsNull() } });
  }

  /**
   * Applies `event` only if the VM is still in one of the statuses the state
   * machine allows it from (and, when it sets releasedAt, only if that is
   * still null). Returns the new updated_at, or that the change was lost.
   */
  async transition(tx: Tx, id: string, event: VmEvent, changes: VmChanges = {}): Promise<TransitionResult> {
    const { from, to } = transitionOf(event);
    const values: Partial<VmEntity> = { ...changes, status: to };
    const qb = on(this.vms, tx)
      .createQueryBuilder()
      .update()
      .set(values)
      .where('id = :id', { id })
      .andWhere('status IN (:...from)', { from });
    if (changes.releasedAt !== undefined) qb.andWhere('released_at IS NULL');
    const result = await qb.updateEntity(false).execute();
    return result.affected === 1 ? { applied: true, updatedAt: values.updatedAt! } : { applied: false };
  }

  /** Marks the VM's resources as given back; true only for the first caller, so release happens once. */
  async markReleased(tx: Tx, id: string, now: Date): Promise<boolean> {
    const result = await on(this.vms, tx)
      .createQueryBuilder()
      .update()
      .set({ releasedAt: now })
      .where('id = :id', { id })
      .andWhere('released_at IS NULL')
      .updateEntity(false)
      .execute();
    return result.affected === 1;
  }

  async exists(tx: Tx, id: string): Promise<boolean> {
    return on(this.vms, tx).existsBy({ id });
  }

  async ownerOf(tx: Tx, id: string): Promise<string | null> {
    const vm = await on(this.vms, tx).findOne({ select: { id: true, ownerId: true }, where: { id } });
    return vm?.ownerId ?? null;
  }

  async countByStatus(tx: Tx): Promise<{ status: VmStatus; count: number }[]> {
    const rows = await on(this.vms, tx)
      .createQueryBuilder('v')
      .select('v.status', 'status')
      .addSelect('COUNT(*)', 'count')
      .groupBy('v.status')
      .getRawMany<{ status: VmStatus; count: string | number }>();
    return rows.map((r) => ({ status: r.status, count: Number(r.count) }));
  }

  /** VMs that hold resources or have work in flight: what the reconciler compares with the hypervisor. */
  listLive(tx: Tx): Promise<VmEntity[]> {
    return on(this.vms, tx)
      .createQueryBuilder('v')
      .leftJoinAndSelect('v.host', 'h')
      .where('v.releasedAt IS NULL')
      .orWhere('v.status IN (:...inFlight)', { inFlight: [VmStatus.Provisioning, VmStatus.Deleting] })
      .getMany();
  }

  /** Fills `allocations` (with their GPUs, in device order) on the VMs that have GPUs. */
  private async attachGpus(tx: Tx, vms: VmEntity[]): Promise<void> {
    const withGpus = vms.filter((vm) => vm.gpuCount > 0);
    for (const vm of vms) vm.allocations = [];
    if (withGpus.length === 0) return;
    const found = await on(this.allocations, tx).find({
      where: { vmId: In(withGpus.map((vm) => vm.id)) },
      relations: { gpu: true },
      order: { gpu: { index: 'ASC' } },
    });
    const byVm = new Map(withGpus.map((vm) => [vm.id, vm]));
    for (const allocation of found) byVm.get(allocation.vmId)!.allocations!.push(allocation);
  }
}
