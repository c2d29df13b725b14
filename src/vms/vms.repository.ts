import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Brackets, In, Repository } from 'typeorm';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { VmLabelEntity } from './vm-label.entity';
import { PowerState, VmEntity, VmStatus } from './vm.entity';
import { VmAction, VmEvent, statusesAllowing, transitionOf } from './vm-state-machine';

export interface VmListFilter {
  ownerId: string | null;
  status: VmStatus | null;
  label: string | null;
  beforeId: string | null;
  limit: number;
}

/** What else a status change writes; `releasedAt` is written only while it is still null, so resources go back once. */
export type VmChanges = Partial<Pick<VmEntity, 'statusReason' | 'hypervisorId' | 'deletedAt' | 'releasedAt' | 'powerState' | 'diskRef'>>;

/** Where and how big a VM is; written when it is placed again or resized. */
export type VmPlacement = Pick<VmEntity, 'hostId' | 'region' | 'cpuCores' | 'memory' | 'gpuCount' | 'gpuModel'>;

/** How a conditional status change ended: applied, or lost to a concurrent change the caller must handle. */
export type TransitionResult = { applied: true; updatedAt: Date } | { applied: false };

export interface VmReadOptions {
  /** Load the GPUs the VM holds or held (only for VMs with GPUs). */
  gpus?: boolean;
  /** Load the host's row, for readers who may see the fleet. */
  host?: boolean;
}

const HOST_JOIN = [{ property: 'host', alias: 'h' }];

/**
 * The VM aggregate: the vms row, its labels, and its GPU allocations (read
 * side). Every query is a QueryBuilder on the VM's TypeORM repository; the
 * API's hot ones run as prepared statements (see PreparedStatements).
 */
@Injectable()
export class VmsRepository {
  constructor(
    @InjectRepository(VmEntity) private readonly vms: Repository<VmEntity>,
    @InjectRepository(VmLabelEntity) private readonly labels: Repository<VmLabelEntity>,
    @InjectRepository(GpuAllocationEntity) private readonly allocations: Repository<GpuAllocationEntity>,
    @InjectRepository(GpuSlotClaimEntity) private readonly slotClaims: Repository<GpuSlotClaimEntity>,
    private readonly statements: PreparedStatements,
  ) {}

  /** Inserts the VM and its label rows; the timestamp columns are stamped on `vm` itself. */
  async insert(tx: Tx, vm: VmEntity): Promise<void> {
    await this.statements.insert(tx, this.vms.target, vm);
    await this.insertLabels(tx, vm.id, vm.labels);
  }

  /**
   * Renames or relabels the VM (its label rows replaced with it), only while the state machine allows an
   * update: applied, or lost to a change of status (a delete) the caller must handle.
   */
  async updateDetails(tx: Tx, id: string, changes: Partial<Pick<VmEntity, 'name' | 'labels'>>): Promise<TransitionResult> {
    const columns = (Object.keys(changes) as (keyof typeof changes)[]).filter((c) => changes[c] !== undefined).sort();
    const { affected, updatedAt } = await this.statements.update(tx, this.vms.target, `details:${columns.join(',')}`, { id, ...changes }, (qb) =>
      qb
        .set(Object.fromEntries(columns.map((c) => [c, () => `:${c}`])))
        .where('id = :id')
        .andWhere('status IN (:...from)', { from: statusesAllowing(VmAction.Update) }),
    );
    if (affected !== 1) return { applied: false };
    if (changes.labels) {
      await this.statements.delete(tx, this.labels.target, 'ofVm', { id }, (qb) => qb.where('vm_id = :id'));
      await this.insertLabels(tx, id, changes.labels);
    }
    return { applied: true, updatedAt };
  }

  async findById(tx: Tx, id: string, options: VmReadOptions = {}): Promise<VmEntity | null> {
    const [vm] = await this.statements.select(
      tx,
      this.vms.target,
      'v',
      `byId:${options.host === true}`,
      { id },
      (qb) => (options.host ? qb.leftJoinAndSelect('v.host', 'h') : qb).where('v.id = :id'),
      options.host ? HOST_JOIN : [],
    );
    if (vm && options.gpus) await this.attachGpus(tx, [vm]);
    return vm ?? null;
  }

  /** The names of these VMs, by id (deleted ones too). */
  async namesOf(tx: Tx, ids: readonly string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 500) {
      const found = await on(this.vms, tx).find({ select: { id: true, name: true }, where: { id: In(ids.slice(i, i + 500)) } });
      for (const vm of found) names.set(vm.id, vm.name);
    }
    return names;
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
    const shape = [filter.ownerId !== null, filter.status !== null, filter.label !== null, filter.beforeId !== null, options.host === true, filter.limit];
    const vms = await this.statements.select(
      tx,
      this.vms.target,
      'v',
      `list:${shape.join(':')}`,
      { ownerId: filter.ownerId, status: filter.status, label: filter.label, beforeId: filter.beforeId },
      (qb) => {
        if (options.host) qb.leftJoinAndSelect('v.host', 'h');
        if (filter.ownerId !== null) qb.andWhere('v.ownerId = :ownerId');
        if (filter.status !== null) qb.andWhere('v.status = :status');
        else {
          qb.andWhere('v.status <> :deleted', { deleted: VmStatus.Deleted }).andWhere(
            new Brackets((w) => w.where('v.status <> :failed', { failed: VmStatus.Failed }).orWhere('v.hostId IS NOT NULL')),
          );
        }
        if (filter.label !== null) {
          qb.andWhere(`EXISTS ${qb.subQuery().select('1').from(VmLabelEntity, 'l').where('l.vmId = v.id').andWhere('l.label = :label').getQuery()}`);
        }
        if (filter.beforeId !== null) qb.andWhere('v.id < :beforeId');
        return qb.orderBy('v.id', 'DESC').limit(filter.limit);
      },
      options.host ? HOST_JOIN : [],
      { pages: true },
    );
    if (options.gpus) await this.attachGpus(tx, vms);
    return vms;
  }

  async publicIpInUse(tx: Tx, publicIp: string): Promise<boolean> {
    const found = await this.statements.raw(tx, this.vms.target, 'v', 'publicIpInUse', { publicIp }, (qb) =>
      qb.select('v.id', 'id').where('v.publicIp = :publicIp').andWhere('v.releasedAt IS NULL').limit(1),
    );
    return found.length > 0;
  }

  /**
   * Applies `event` only if the VM is still in one of the statuses the state
   * machine allows it from (and, when it sets releasedAt, only if that is
   * still null). Returns the new updated_at, or that the change was lost.
   */
  async transition(tx: Tx, id: string, event: VmEvent, changes: VmChanges = {}): Promise<TransitionResult> {
    const { from, to } = transitionOf(event);
    const columns = (Object.keys(changes) as (keyof VmChanges)[]).filter((k) => changes[k] !== undefined).sort();
    const guarded = changes.releasedAt !== undefined;
    const { affected, updatedAt } = await this.statements.update(tx, this.vms.target, `transition:${event}:${columns.join(',')}`, { id, ...changes }, (qb) => {
      qb.set({ status: to, ...Object.fromEntries(columns.map((c) => [c, () => `:${c}`])) })
        .where('id = :id')
        .andWhere('status IN (:...from)', { from });
      return guarded ? qb.andWhere('released_at IS NULL') : qb;
    });
    return affected === 1 ? { applied: true, updatedAt } : { applied: false };
  }

  /** Records the VM's power as the hypervisor last reported it. */
  async setPowerState(tx: Tx, id: string, powerState: PowerState): Promise<Date> {
    const { updatedAt } = await this.statements.update(tx, this.vms.target, 'power', { id, powerState }, (qb) =>
      qb.set({ powerState: () => ':powerState' }).where('id = :id'),
    );
    return updatedAt;
  }

  /**
   * Records that the VM holds resources again (unshelve: placed on `placement`),
   * only if it held none: true for the one caller that did.
   */
  async markClaimed(tx: Tx, id: string, placement: VmPlacement): Promise<boolean> {
    const { affected } = await this.statements.update(tx, this.vms.target, 'claimed', { id, ...placement }, (qb) =>
      qb
        .set({ releasedAt: null, hostId: () => ':hostId', region: () => ':region', cpuCores: () => ':cpuCores', memory: () => ':memory', gpuCount: () => ':gpuCount', gpuModel: () => ':gpuModel' })
        .where('id = :id')
        .andWhere('released_at IS NOT NULL'),
    );
    return affected === 1;
  }

  /** Records where a VM that waited for capacity was placed. */
  async place(tx: Tx, id: string, hostId: string, region: string, gpuModel: string | null): Promise<void> {
    await this.statements.update(tx, this.vms.target, 'place', { id, hostId, region, gpuModel }, (qb) =>
      qb.set({ hostId: () => ':hostId', region: () => ':region', gpuModel: () => ':gpuModel' }).where('id = :id'),
    );
  }

  /** Changes a VM's size (a resize that succeeded, or one of a shelved VM, which holds nothing). */
  async setSize(tx: Tx, id: string, size: Pick<VmEntity, 'cpuCores' | 'memory' | 'gpuCount' | 'gpuModel'>): Promise<Date> {
    const { updatedAt } = await this.statements.update(tx, this.vms.target, 'size', { id, ...size }, (qb) =>
      qb.set({ cpuCores: () => ':cpuCores', memory: () => ':memory', gpuCount: () => ':gpuCount', gpuModel: () => ':gpuModel' }).where('id = :id'),
    );
    return updatedAt;
  }

  /** Marks the VM's resources as given back; true only for the first caller, so release happens once. */
  async markReleased(tx: Tx, id: string, now: Date): Promise<boolean> {
    const { affected } = await this.statements.update(tx, this.vms.target, 'markReleased', { id, releasedAt: now }, (qb) =>
      qb.set({ releasedAt: () => ':releasedAt' }).where('id = :id').andWhere('released_at IS NULL'),
    );
    return affected === 1;
  }

  /** VMs the user holds or has in flight: what must go before the user can. */
  countLiveOwnedBy(tx: Tx, ownerId: string): Promise<number> {
    return on(this.vms, tx)
      .createQueryBuilder('v')
      .where('v.ownerId = :ownerId', { ownerId })
      .andWhere(new Brackets((w) => w.where('v.releasedAt IS NULL').orWhere('v.status IN (:...inFlight)', { inFlight: [VmStatus.Provisioning, VmStatus.Deleting] })))
      .getCount();
  }

  /**
   * What keeps a host from being removed: VMs on it that hold or are taking
   * its capacity (live, as countLiveOwnedBy counts them), and shelved VMs
   * pinned to it (their disk was kept there).
   */
  async countOnHost(tx: Tx, hostId: string): Promise<{ live: number; shelved: number }> {
    const row = await on(this.vms, tx)
      .createQueryBuilder('v')
      .select(`SUM(CASE WHEN v.status = :shelved THEN 1 ELSE 0 END)`, 'shelved')
      .addSelect(`SUM(CASE WHEN v.status <> :shelved AND (v.released_at IS NULL OR v.status IN (:...inFlight)) THEN 1 ELSE 0 END)`, 'live')
      .where('v.hostId = :hostId', { hostId, shelved: VmStatus.Shelved, inFlight: [VmStatus.Provisioning, VmStatus.Deleting] })
      .getRawOne<{ live: string | number | null; shelved: string | number | null }>();
    return { live: Number(row?.live ?? 0), shelved: Number(row?.shelved ?? 0) };
  }

  async exists(tx: Tx, id: string): Promise<boolean> {
    return on(this.vms, tx).existsBy({ id });
  }

  async ownerOf(tx: Tx, id: string): Promise<string | null> {
    const [row] = await this.statements.raw<{ owner_id: string }>(tx, this.vms.target, 'v', 'ownerOf', { id }, (qb) =>
      qb.select('v.ownerId', 'owner_id').where('v.id = :id'),
    );
    return row?.owner_id ?? null;
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

  private async insertLabels(tx: Tx, vmId: string, labels: readonly string[]): Promise<void> {
    for (const label of new Set(labels)) {
      await this.statements.insert(tx, this.labels.target, Object.assign(new VmLabelEntity(), { vmId, label }));
    }
  }

  /** Fills `allocations` (with their GPUs, in device order) on the VMs that have GPUs, and `slotClaims` on fractional ones. */
  private async attachGpus(tx: Tx, vms: VmEntity[]): Promise<void> {
    await this.attachSlotClaims(tx, vms);
    const withGpus = vms.filter((vm) => vm.gpuCount > 0);
    for (const vm of vms) vm.allocations = [];
    if (withGpus.length === 0) return;
    const found = await this.statements.select(
      tx,
      this.allocations.target,
      'a',
      'ofVms',
      { vmIds: withGpus.map((vm) => vm.id) },
      (qb) => qb.innerJoinAndSelect('a.gpu', 'g').where('a.vmId IN (:...vmIds)').orderBy('a.vmId').addOrderBy('g.index'),
      [{ property: 'gpu', alias: 'g' }],
    );
    const byVm = new Map(withGpus.map((vm) => [vm.id, vm]));
    for (const allocation of found) byVm.get(allocation.vmId)!.allocations!.push(allocation);
  }

  /** The slot rows (with their GPU) of the VMs that asked for a gpu_profile, in slot order. */
  private async attachSlotClaims(tx: Tx, vms: VmEntity[]): Promise<void> {
    const fractional = vms.filter((vm) => vm.gpuProfile);
    for (const vm of vms) vm.slotClaims = [];
    if (fractional.length === 0) return;
    const found = await this.statements.select(
      tx,
      this.slotClaims.target,
      'c',
      'ofVms',
      { vmIds: fractional.map((vm) => vm.id) },
      (qb) => qb.innerJoinAndSelect('c.gpu', 'g').where('c.vmId IN (:...vmIds)').orderBy('c.vmId').addOrderBy('c.createdAt').addOrderBy('c.slot'),
      [{ property: 'gpu', alias: 'g' }],
    );
    const byVm = new Map(fractional.map((vm) => [vm.id, vm]));
    for (const claim of found) byVm.get(claim.vmId)!.slotClaims!.push(claim);
  }
}
