import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Brackets, FindOptionsWhere, In, IsNull, Not, Repository } from 'typeorm';
import { Clock } from '../common/clock';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import { allTogether } from '../database/statements-together';
import type { Tx } from '../database/unit-of-work';
import type { SchedulerGpu, SchedulerHost } from '../scheduler/scheduler.types';
import type { HostShape } from './feasibility';
import { constraintViolation } from '../database/constraint-violation';
import { FleetSnapshot, SnapshotGpu, SnapshotHost } from './fleet-snapshot';
import type { GpuSharingMode } from './domain/gpu-profiles';
import { GpuAllocationEntity } from './gpu-allocation.entity';
import { GpuSlotClaimEntity } from './gpu-slot-claim.entity';
import { GpuEntity } from './gpu.entity';
import { HostEntity, HostState } from './host.entity';

export interface PlacementResources {
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
}

/** The GPUs a request needs, as the candidate read filters hosts by them. */
export interface GpuNeed {
  /** Whole passthrough GPUs, all of one model; 0 for a CPU-only or a fractional request. */
  count: number;
  /** null: any (one) model. */
  model: string | null;
  /** A fractional request: the sharing mode its GPU must be in. */
  sharedMode?: Exclude<GpuSharingMode, 'passthrough'>;
}

export interface GpuCounts {
  region: string;
  model: string;
  total: number;
  allocated: number;
  free: number;
  unavailable: number;
}

/**
 * A host the scheduler may choose, with the libvirt URI its VMs' hypervisor calls go to (read in the same
 * statement), and its GPUs with the VM bound to each.
 */
export type CandidateHost = SnapshotHost;

/** Every placeable host, whatever it has free: what the fleet snapshot reads. */
const ANY_SIZE: PlacementResources = { cpuCores: 0, memoryMib: 0, diskGib: 0 };

interface CandidateRow {
  id: string;
  name: string;
  region: string;
  state: HostState;
  hypervisor_uri: string | null;
  cpu_cores: number;
  memory_mib: number;
  disk_gib: number;
  used_cpu_cores: number;
  used_memory_mib: number;
  used_disk_gib: number;
  /** The host's GPUs as a JSON array of CandidateGpu tuples (SQLite: text; PostgreSQL: parsed by the driver; null: none). */
  gpus: string | CandidateGpu[] | null;
}

/** One GPU of a candidate host, in the order CANDIDATE_GPU_FIELDS lists. */
type CandidateGpu = [id: string, index: number, model: string, vmId: string | null, sharingMode: GpuSharingMode | null, vgpuProfile: string | null, liveClaims: number | null];
const CANDIDATE_GPU_FIELDS = 'g.id, g.index, g.model, g.vmId, g.sharingMode, g.vgpuProfile, g.liveClaims';

/** One fractional claim to write: the profile on one GPU, its slots, and the GPU's mode it was planned for. */
export interface SlotClaimWrite {
  gpuId: string;
  profile: string;
  slots: number[];
  sharingMode: 'vgpu' | 'mig';
}

/**
 * The host aggregate: hosts, their GPUs, and GPU allocations. Claims and
 * releases are conditional updates, so a stale plan can never over-commit a
 * host or bind a GPU twice.
 */
@Injectable()
export class FleetRepository {
  constructor(
    @InjectRepository(HostEntity) private readonly hosts: Repository<HostEntity>,
    @InjectRepository(GpuEntity) private readonly gpus: Repository<GpuEntity>,
    @InjectRepository(GpuAllocationEntity) private readonly allocations: Repository<GpuAllocationEntity>,
    @InjectRepository(GpuSlotClaimEntity) private readonly slotClaims: Repository<GpuSlotClaimEntity>,
    private readonly statements: PreparedStatements,
    clock: Clock,
  ) {
    this.snapshot = new FleetSnapshot(() => clock.now().getTime());
  }

  /** What placement last read of the fleet, kept current by this repository's writes (fleet-snapshot.ts). */
  private readonly snapshot: FleetSnapshot;

  /**
   * Every active, reachable host with all its GPUs, from the fleet snapshot; read (and kept) when it has none
   * young enough. `cached` says which: a plan that finds no room in a kept snapshot asks loadCandidates, since
   * another replica may have given capacity back since it was read.
   */
  async placementHosts(tx: Tx): Promise<{ hosts: readonly CandidateHost[]; cached: boolean }> {
    const kept = this.snapshot.current();
    if (kept) return { hosts: kept, cached: true };
    const start = this.snapshot.begin();
    let hosts: CandidateHost[];
    try {
      hosts = await this.loadCandidates(tx, ANY_SIZE, null);
    } catch (error) {
      this.snapshot.abandon();
      throw error;
    }
    this.snapshot.keep(start, hosts, tx.connection.options.type !== 'postgres');
    return { hosts, cached: false };
  }

  /** Drops the fleet snapshot: the next placement reads the fleet again. */
  forgetPlacementSnapshot(): void {
    this.snapshot.drop();
  }

  async insertHost(tx: Tx, host: HostEntity, gpus: GpuEntity[]): Promise<void> {
    await on(this.hosts, tx).createQueryBuilder().insert().values(host).updateEntity(false).execute();
    if (gpus.length > 0) await on(this.gpus, tx).createQueryBuilder().insert().values(gpus).updateEntity(false).execute();
    this.snapshot.drop();
  }

  /** Every host's id, name and libvirt URI: where the reconciler looks for VMs. A removed host holds none, and may be gone. */
  hostTargets(tx: Tx): Promise<Pick<HostEntity, 'id' | 'name' | 'hypervisorUri' | 'unreachableSince'>[]> {
    return on(this.hosts, tx).find({
      select: { id: true, name: true, hypervisorUri: true, unreachableSince: true },
      where: { state: Not(HostState.Removed) },
      order: { name: 'ASC' },
    });
  }

  /** Hosts (not removed) whose hypervisor is marked as not answering. */
  countUnreachable(tx: Tx): Promise<number> {
    return on(this.hosts, tx).count({ where: { state: Not(HostState.Removed), unreachableSince: Not(IsNull()) } });
  }

  /** The host's libvirt URI (null: the driver's default), or undefined when there is no such host. */
  async hypervisorUriOf(tx: Tx, id: string): Promise<string | null | undefined> {
    const host = await on(this.hosts, tx).findOne({ select: { id: true, hypervisorUri: true }, where: { id } });
    return host ? host.hypervisorUri : undefined;
  }

  findHost(tx: Tx, id: string): Promise<HostEntity | null> {
    return on(this.hosts, tx).findOne({ where: { id }, relations: { gpus: true }, order: { gpus: { index: 'ASC' } } });
  }

  /** Hosts by name; removed ones only when asked for. */
  listHosts(tx: Tx, includeRemoved = false): Promise<HostEntity[]> {
    return on(this.hosts, tx).find({
      where: includeRemoved ? {} : { state: Not(HostState.Removed) },
      relations: { gpus: true },
      order: { name: 'ASC', gpus: { index: 'ASC' } },
    });
  }

  anyHost(tx: Tx): Promise<boolean> {
    return on(this.hosts, tx).exists();
  }

  /** Whether a host not removed has the name (other than `exceptId`); with `includeRemoved`, whether any host ever had it. */
  hostNameExists(tx: Tx, name: string, options: { includeRemoved?: boolean; exceptId?: string } = {}): Promise<boolean> {
    const where: FindOptionsWhere<HostEntity> = { name };
    if (!options.includeRemoved) where.state = Not(HostState.Removed);
    if (options.exceptId) where.id = Not(options.exceptId);
    return on(this.hosts, tx).existsBy(where);
  }

  async existingGpuUuids(tx: Tx, uuids: string[]): Promise<string[]> {
    if (uuids.length === 0) return [];
    const found = await on(this.gpus, tx).find({ select: { id: true, uuid: true }, where: { uuid: In(uuids) } });
    return found.map((g) => g.uuid);
  }

  async setHostState(tx: Tx, id: string, state: HostState): Promise<HostEntity | null> {
    await on(this.hosts, tx).update({ id }, { state });
    this.snapshot.drop();
    return this.findHost(tx, id);
  }

  /**
   * Records that these hosts' hypervisors did not answer at `now`, keeping the
   * time of any earlier mark; returns how many were answering until now.
   */
  markUnreachable(tx: Tx, hostIds: readonly string[], now: Date): Promise<number> {
    return this.setUnreachableSince(tx, hostIds, now);
  }

  /** Records that these hosts' hypervisors answered; returns how many had been marked unreachable. */
  markReachable(tx: Tx, hostIds: readonly string[]): Promise<number> {
    return this.setUnreachableSince(tx, hostIds, null);
  }

  /** Sets unreachable_since on the hosts where it changes state (null ↔ a time); returns how many changed. */
  private async setUnreachableSince(tx: Tx, hostIds: readonly string[], since: Date | null): Promise<number> {
    if (hostIds.length === 0) return 0;
    const { affected } = await on(this.hosts, tx)
      .createQueryBuilder()
      .update()
      .set({ unreachableSince: since })
      .where('id IN (:...hostIds)', { hostIds })
      .andWhere(since ? 'unreachable_since IS NULL' : 'unreachable_since IS NOT NULL')
      .updateEntity(false)
      .execute();
    if (affected) this.snapshot.drop();
    return affected ?? 0;
  }

  /**
   * Applies an admin's changes to a host that is not removed; false when
   * there is no such host or it is removed (the caller tells which). The
   * condition is in the UPDATE, so a removal committed meanwhile wins.
   */
  async updateHost(tx: Tx, id: string, changes: Partial<Pick<HostEntity, 'name' | 'labels' | 'state'>>): Promise<boolean> {
    const { affected } = await on(this.hosts, tx)
      .createQueryBuilder()
      .update()
      .set(changes)
      .where('id = :id', { id })
      .andWhere('state <> :removed', { removed: HostState.Removed })
      .updateEntity(false)
      .execute();
    this.snapshot.drop();
    return affected === 1;
  }

  /**
   * Marks the host removed, if it is not already; returns whether this call
   * did. The UPDATE takes the host's row lock first, as every claim does
   * (claimHost also updates this row, and only while the host is active):
   * a create that claimed the host before this commits holds the lock until
   * its VM is committed, so the caller's count of VMs, made after this,
   * sees it; a claim that comes after finds the host removed and re-plans.
   */
  markRemoved(tx: Tx, id: string): Promise<boolean> {
    return this.updateHost(tx, id, { state: HostState.Removed });
  }

  /**
   * Active hosts with room for the request's CPU, memory and disk, with all their GPUs, in one query: one row
   * per host, its GPUs aggregated into a JSON array, rather than a row per GPU (a join), for which the driver
   * builds an object each: a fleet has several GPUs per host (docs/benchmarks.md).
   */
  async loadCandidates(tx: Tx, need: PlacementResources, region: string | null | undefined, gpuNeed?: GpuNeed): Promise<CandidateHost[]> {
    const postgres = tx.connection.options.type === 'postgres';
    // Only hosts that could take the request's GPUs: for whole GPUs, enough free passthrough ones (of the model);
    // for a fractional GPU, one in its sharing mode (of the model). Reading every host's GPUs grows with the
    // fleet (docs/benchmarks.md, twelfth session).
    const kind = gpuNeed?.sharedMode ? 'shared' : (gpuNeed?.count ?? 0) > 0 ? 'whole' : null;
    const byModel = Boolean(gpuNeed?.model);
    const rows = await this.statements.raw<CandidateRow>(
      tx,
      this.hosts.target,
      'h',
      `candidates:${Boolean(region)}:${kind}:${byModel}`,
      {
        active: HostState.Active,
        cpu: need.cpuCores,
        memory: need.memoryMib,
        disk: need.diskGib,
        region: region ?? null,
        gpuCount: gpuNeed?.count ?? 0,
        gpuModel: gpuNeed?.model ?? null,
        sharedMode: gpuNeed?.sharedMode ?? null,
      },
      (qb) => {
        const gpus = postgres
          ? `json_agg(json_build_array(${CANDIDATE_GPU_FIELDS}) ORDER BY g.index)`
          : `json_group_array(json_array(${CANDIDATE_GPU_FIELDS}) ORDER BY g.index)`;
        qb.select(['h.id AS id', 'h.name AS name', 'h.region AS region', 'h.state AS state', 'h.hypervisor_uri AS hypervisor_uri'])
          .addSelect(['h.cpu_cores AS cpu_cores', 'h.memory_mib AS memory_mib', 'h.disk_gib AS disk_gib'])
          .addSelect(['h.used_cpu_cores AS used_cpu_cores', 'h.used_memory_mib AS used_memory_mib', 'h.used_disk_gib AS used_disk_gib'])
          .addSelect((sub) => sub.select(gpus).from(GpuEntity, 'g').where('g.hostId = h.id'), 'gpus')
          .where('h.state = :active')
          .andWhere('h.unreachableSince IS NULL')
          .andWhere('h.cpuCores - h.usedCpuCores >= :cpu')
          .andWhere('h.memoryMib - h.usedMemoryMib >= :memory')
          .andWhere('h.diskGib - h.usedDiskGib >= :disk');
        if (region) qb.andWhere('h.region = :region');
        if (kind !== null) {
          const usable = qb.subQuery().select('1').from(GpuEntity, 'f').where('f.hostId = h.id');
          if (byModel) usable.andWhere('f.model = :gpuModel');
          if (kind === 'shared') usable.andWhere('f.sharingMode = :sharedMode');
          else usable.andWhere('f.vmId IS NULL').andWhere('f.liveClaims = 0').andWhere(`f.sharingMode = 'passthrough'`).groupBy('f.model').having('COUNT(*) >= :gpuCount');
          qb.andWhere(`EXISTS ${usable.getQuery()}`);
        }
        return qb.orderBy('h.name');
      },
    );
    const hosts: CandidateHost[] = rows.map((r) => ({
      id: r.id,
      name: r.name,
      region: r.region,
      state: r.state,
      hypervisorUri: r.hypervisor_uri,
      cpuCores: r.cpu_cores,
      memoryMib: r.memory_mib,
      diskGib: r.disk_gib,
      usedCpuCores: r.used_cpu_cores,
      usedMemoryMib: r.used_memory_mib,
      usedDiskGib: r.used_disk_gib,
      gpus: candidateGpus(r.gpus),
    }));
    await this.fillUsedSlots(tx, hosts);
    return hosts;
  }

  /** Sets usedSlots on the shared GPUs that have live claims, from their claim rows (one query, only when there are any). */
  private async fillUsedSlots(tx: Tx, hosts: SchedulerHost[]): Promise<void> {
    const claimed = new Map<string, SchedulerGpu>();
    for (const host of hosts) for (const gpu of host.gpus) if (gpu.sharingMode !== undefined && !gpu.free) claimed.set(gpu.id, gpu);
    if (claimed.size === 0) return;
    const rows = await this.liveSlots(tx, [...claimed.keys()]);
    for (const row of rows) {
      const gpu = claimed.get(row.gpuId)!;
      gpu.usedSlots = (gpu.usedSlots ?? 0) | (1 << row.slot);
    }
  }

  /** The slots held on these GPUs now (claim rows not released). */
  liveSlots(tx: Tx, gpuIds: string[]): Promise<{ gpuId: string; slot: number }[]> {
    if (gpuIds.length === 0) return Promise.resolve([]);
    return on(this.slotClaims, tx)
      .createQueryBuilder('c')
      .select(['c.gpuId', 'c.slot'])
      .where('c.gpuId IN (:...gpuIds)', { gpuIds })
      .andWhere('c.releasedAt IS NULL')
      .getMany();
  }

  /**
   * Takes a fractional claim for the VM: first the GPU's row, conditionally (still in the mode the plan saw,
   * not bound whole, and for a vGPU holding no other size; it counts one more live claim and records the
   * size), then one row per slot under the live-slot unique index. Returns false when the plan went stale: the
   * condition failed, or another VM holds one of the slots (the unique index refused it).
   */
  async claimGpuSlots(tx: Tx, vmId: string, claim: SlotClaimWrite, ids: string[]): Promise<boolean> {
    const params = { gpuId: claim.gpuId, mode: claim.sharingMode, profile: claim.profile };
    const { affected } = await this.statements.update(tx, this.gpus.target, `claimSlots:${claim.sharingMode}`, params, (qb) => {
      qb.where('id = :gpuId').andWhere('sharing_mode = :mode').andWhere('vm_id IS NULL');
      if (claim.sharingMode === 'vgpu') {
        return qb
          .set({ liveClaims: () => 'live_claims + 1', vgpuProfile: () => ':profile' })
          .andWhere(new Brackets((w) => w.where('vgpu_profile IS NULL').orWhere('vgpu_profile = :profile')));
      }
      return qb.set({ liveClaims: () => 'live_claims + 1' });
    });
    this.snapshot.drop();
    if (affected !== 1) return false;
    try {
      for (const [i, slot] of claim.slots.entries()) {
        const row = Object.assign(new GpuSlotClaimEntity(), { id: ids[i], gpuId: claim.gpuId, vmId, slot, profile: claim.profile, releasedAt: null });
        await this.statements.insert(tx, this.slotClaims.target, row);
      }
    } catch (error) {
      const violation = constraintViolation(error);
      if (violation?.kind === 'unique' && /gpu_slot_claims/.test(violation.target)) return false;
      throw error;
    }
    return true;
  }

  /**
   * Gives back the VM's fractional claims: counts one claim less on each GPU it holds slots of, closes its slot
   * rows, and clears the vGPU size of a GPU whose last claim this was (so it may take another size). The GPU
   * row first, then the slot rows: the order a claim takes them in, so the two never wait on each other in a
   * cycle.
   */
  async releaseGpuSlots(tx: Tx, vmId: string, now: Date): Promise<void> {
    const held = await on(this.slotClaims, tx)
      .createQueryBuilder('c')
      .select('c.gpuId', 'gpu_id')
      .distinct(true)
      .where('c.vmId = :vmId', { vmId })
      .andWhere('c.releasedAt IS NULL')
      .getRawMany<{ gpu_id: string }>();
    if (held.length === 0) return;
    this.snapshot.drop();
    const gpuIds = held.map((row) => row.gpu_id).sort();
    for (const gpuId of gpuIds) {
      await on(this.gpus, tx).createQueryBuilder().update().set({ liveClaims: () => 'live_claims - 1' }).where('id = :gpuId', { gpuId }).updateEntity(false).execute();
    }
    await on(this.slotClaims, tx)
      .createQueryBuilder()
      .update()
      .set({ releasedAt: now })
      .where('vm_id = :vmId', { vmId })
      .andWhere('released_at IS NULL')
      .updateEntity(false)
      .execute();
    await on(this.gpus, tx)
      .createQueryBuilder()
      .update()
      .set({ vgpuProfile: null })
      .where('id IN (:...gpuIds)', { gpuIds })
      .andWhere('live_claims = 0')
      .andWhere('vgpu_profile IS NOT NULL')
      .updateEntity(false)
      .execute();
  }

  /**
   * Changes a GPU's sharing mode only while nothing holds it (no VM bound, no live claim), in one conditional
   * UPDATE on the GPU's row: a claim racing it either counted itself on that row first (and this finds it) or
   * finds the new mode (and re-plans). Returns whether it changed.
   */
  async setSharingMode(tx: Tx, hostId: string, gpuId: string, mode: GpuSharingMode): Promise<boolean> {
    const { affected } = await on(this.gpus, tx)
      .createQueryBuilder()
      .update()
      .set({ sharingMode: mode, vgpuProfile: null })
      .where('id = :gpuId', { gpuId })
      .andWhere('host_id = :hostId', { hostId })
      .andWhere('vm_id IS NULL')
      .andWhere('live_claims = 0')
      .updateEntity(false)
      .execute();
    this.snapshot.drop();
    return affected === 1;
  }

  /** Every host in the fleet (any state but removed), with its GPUs per model: what the fleet could hold at all. */
  async shapes(tx: Tx): Promise<HostShape[]> {
    const rows = await on(this.hosts, tx)
      .createQueryBuilder('h')
      .leftJoin('h.gpus', 'g')
      .select(['h.id AS id', 'h.name AS name', 'h.region AS region', 'h.cpu_cores AS cpu_cores', 'h.memory_mib AS memory_mib', 'h.disk_gib AS disk_gib'])
      .addSelect('g.model', 'model')
      .addSelect('g.sharing_mode', 'sharing_mode')
      .addSelect('COUNT(g.id)', 'gpus')
      .where('h.state <> :removed', { removed: HostState.Removed })
      .groupBy('h.id')
      .addGroupBy('g.model')
      .addGroupBy('g.sharing_mode')
      .getRawMany<{ id: string; name: string; region: string; cpu_cores: number; memory_mib: number; disk_gib: number; model: string | null; sharing_mode: GpuSharingMode | null; gpus: string | number }>();
    const byId = new Map<string, HostShape>();
    for (const r of rows) {
      let host = byId.get(r.id);
      if (!host) {
        host = { id: r.id, name: r.name, region: r.region, cpuCores: r.cpu_cores, memoryMib: r.memory_mib, diskGib: r.disk_gib, gpus: {}, sharedGpus: {} };
        byId.set(r.id, host);
      }
      if (r.model === null) continue;
      host.gpus[r.model] = (host.gpus[r.model] ?? 0) + Number(r.gpus);
      if (r.sharing_mode && r.sharing_mode !== 'passthrough') {
        const modes = (host.sharedGpus![r.model] ??= {});
        modes[r.sharing_mode] = Number(r.gpus);
      }
    }
    return [...byId.values()];
  }

  /** Adds the VM's resources to the host only if they still fit and the host is active. */
  async claimHost(tx: Tx, hostId: string, need: PlacementResources): Promise<boolean> {
    const { affected } = await this.statements.update(tx, this.hosts.target, 'claim', { hostId, ...amounts(need), active: HostState.Active }, (qb) =>
      qb
        .set({
          usedCpuCores: () => 'used_cpu_cores + :cpu',
          usedMemoryMib: () => 'used_memory_mib + :memory',
          usedDiskGib: () => 'used_disk_gib + :disk',
        })
        .where('id = :hostId')
        .andWhere('state = :active')
        .andWhere('used_cpu_cores + :cpu <= cpu_cores')
        .andWhere('used_memory_mib + :memory <= memory_mib')
        .andWhere('used_disk_gib + :disk <= disk_gib'),
    );
    // Refused: the host is full or no longer active, whatever the snapshot showed; it is read again.
    if (affected === 1) this.snapshot.hostChanged(tx, hostId, need, 1);
    else this.snapshot.drop();
    return affected === 1;
  }

  async releaseHost(tx: Tx, hostId: string, need: PlacementResources): Promise<void> {
    const { affected } = await this.statements.update(tx, this.hosts.target, 'release', { hostId, ...amounts(need) }, (qb) =>
      qb
        .set({
          usedCpuCores: () => 'used_cpu_cores - :cpu',
          usedMemoryMib: () => 'used_memory_mib - :memory',
          usedDiskGib: () => 'used_disk_gib - :disk',
        })
        .where('id = :hostId'),
    );
    if (affected === 1) this.snapshot.hostChanged(tx, hostId, need, -1);
  }

  /** Binds the GPUs to the VM only if every one of them is still free; returns how many were bound. */
  async bindGpus(tx: Tx, vmId: string, hostId: string, gpuIds: string[]): Promise<number> {
    const { affected } = await this.statements.update(tx, this.gpus.target, 'bind', { vmId, hostId, gpuIds, passthrough: 'passthrough' }, (qb) =>
      qb.set({ vmId: () => ':vmId' }).where('host_id = :hostId').andWhere('vm_id IS NULL').andWhere('sharing_mode = :passthrough').andWhere('id IN (:...gpuIds)'),
    );
    // Not all bound: the plan went stale (the caller's transaction will not commit); the fleet is read again.
    if (affected === gpuIds.length) this.snapshot.gpusBound(tx, vmId, gpuIds);
    else this.snapshot.drop();
    return affected;
  }

  /** One row per GPU, sent together (statements-together.ts). */
  async insertAllocations(tx: Tx, rows: Pick<GpuAllocationEntity, 'id' | 'gpuId' | 'vmId'>[]): Promise<void> {
    await allTogether(
      tx,
      rows.map((row) => () => this.statements.insert(tx, this.allocations.target, Object.assign(new GpuAllocationEntity(), { ...row, releasedAt: null }))),
    );
  }

  /** Frees the VM's GPUs and closes its live allocations, both sent together (statements-together.ts). */
  async unbindGpus(tx: Tx, vmId: string, now: Date): Promise<void> {
    this.snapshot.gpusUnbound(tx, vmId);
    await allTogether(tx, [
      () => this.statements.update(tx, this.gpus.target, 'unbind', { vmId }, (qb) => qb.set({ vmId: null }).where('vm_id = :vmId')),
      () => this.statements.update(tx, this.allocations.target, 'close', { vmId, releasedAt: now }, (qb) =>
        qb.set({ releasedAt: () => ':releasedAt' }).where('vm_id = :vmId').andWhere('released_at IS NULL'),
      ),
    ]);
  }

  /** Up to `count` free GPUs of `model` on the host, in device order (for a resize that adds GPUs in place). */
  freeGpusOnHost(tx: Tx, hostId: string, model: string, count: number): Promise<GpuEntity[]> {
    return on(this.gpus, tx)
      .createQueryBuilder('g')
      .where('g.hostId = :hostId', { hostId })
      .andWhere('g.model = :model', { model })
      .andWhere('g.vmId IS NULL')
      .andWhere('g.sharingMode = :passthrough', { passthrough: 'passthrough' })
      .orderBy('g.index')
      .limit(count)
      .getMany();
  }

  /** Frees some of a VM's GPUs (a resize that removes GPUs) and closes their allocations. */
  async unbindSomeGpus(tx: Tx, vmId: string, gpuIds: string[], now: Date): Promise<void> {
    if (gpuIds.length === 0) return;
    this.snapshot.gpusUnbound(tx, vmId, gpuIds);
    await on(this.gpus, tx).createQueryBuilder().update().set({ vmId: null }).where('vm_id = :vmId', { vmId }).andWhere('id IN (:...gpuIds)', { gpuIds }).updateEntity(false).execute();
    await on(this.allocations, tx)
      .createQueryBuilder()
      .update()
      .set({ releasedAt: now })
      .where('vm_id = :vmId', { vmId })
      .andWhere('gpu_id IN (:...gpuIds)', { gpuIds })
      .andWhere('released_at IS NULL')
      .updateEntity(false)
      .execute();
  }

  gpuDetails(tx: Tx, gpuIds: string[]): Promise<GpuEntity[]> {
    return this.statements.select(tx, this.gpus.target, 'g', 'byIds', { gpuIds }, (qb) => qb.where('g.id IN (:...gpuIds)').orderBy('g.index'));
  }

  /** Per (region, model), over the hosts not removed: totals, allocated, free on active hosts, and free on other hosts. */
  async gpuCounts(tx: Tx): Promise<GpuCounts[]> {
    const rows = await on(this.gpus, tx)
      .createQueryBuilder('g')
      .innerJoin('g.host', 'h')
      .select('h.region', 'region')
      .addSelect('g.model', 'model')
      .addSelect('COUNT(*)', 'total')
      .addSelect('SUM(CASE WHEN g.vm_id IS NOT NULL OR g.live_claims > 0 THEN 1 ELSE 0 END)', 'allocated')
      .addSelect('SUM(CASE WHEN g.vm_id IS NULL AND g.live_claims = 0 AND h.state = :active AND h.unreachable_since IS NULL THEN 1 ELSE 0 END)', 'free')
      .addSelect('SUM(CASE WHEN g.vm_id IS NULL AND g.live_claims = 0 AND (h.state <> :active OR h.unreachable_since IS NOT NULL) THEN 1 ELSE 0 END)', 'unavailable')
      .where('h.state <> :removed')
      .setParameters({ active: HostState.Active, removed: HostState.Removed })
      .groupBy('h.region')
      .addGroupBy('g.model')
      .orderBy('g.model')
      .addOrderBy('h.region')
      .getRawMany<Record<keyof GpuCounts, string | number>>();
    return rows.map((r) => ({
      region: String(r.region),
      model: String(r.model),
      total: Number(r.total),
      allocated: Number(r.allocated),
      free: Number(r.free),
      unavailable: Number(r.unavailable),
    }));
  }

  /** Free whole (passthrough) GPUs per (region, model, host) on active hosts that can still take a VM of `need`. */
  async freeGpusPerHost(tx: Tx, need: PlacementResources): Promise<{ region: string; model: string; hostId: string; free: number }[]> {
    const rows = await on(this.gpus, tx)
      .createQueryBuilder('g')
      .innerJoin('g.host', 'h')
      .select('h.region', 'region')
      .addSelect('g.model', 'model')
      .addSelect('h.id', 'host_id')
      .addSelect('COUNT(*)', 'free')
      .where('g.vm_id IS NULL')
      .andWhere('g.sharing_mode = :passthrough', { passthrough: 'passthrough' })
      .andWhere('h.state = :active', { active: HostState.Active })
      .andWhere('h.unreachable_since IS NULL')
      .andWhere('h.cpu_cores - h.used_cpu_cores >= :cpu', { cpu: need.cpuCores })
      .andWhere('h.memory_mib - h.used_memory_mib >= :memory', { memory: need.memoryMib })
      .andWhere('h.disk_gib - h.used_disk_gib >= :disk', { disk: need.diskGib })
      .groupBy('h.region')
      .addGroupBy('g.model')
      .addGroupBy('h.id')
      .getRawMany<{ region: string; model: string; host_id: string; free: string | number }>();
    return rows.map((r) => ({ region: r.region, model: r.model, hostId: r.host_id, free: Number(r.free) }));
  }
}

function amounts(need: PlacementResources): { cpu: number; memory: number; disk: number } {
  return { cpu: need.cpuCores, memory: need.memoryMib, disk: need.diskGib };
}

function candidateGpus(json: CandidateRow['gpus']): SnapshotGpu[] {
  const tuples: CandidateGpu[] = json === null ? [] : typeof json === 'string' ? (JSON.parse(json) as CandidateGpu[]) : json;
  return tuples.map(([id, index, model, vmId, sharingMode, vgpuProfile, liveClaims]) => {
    const gpu: SnapshotGpu = { id, index, model, free: vmId === null && Number(liveClaims ?? 0) === 0, vmId };
    const mode = sharingMode ?? 'passthrough';
    if (mode !== 'passthrough') Object.assign(gpu, { sharingMode: mode, vgpuProfile, usedSlots: 0 });
    return gpu;
  });
}
