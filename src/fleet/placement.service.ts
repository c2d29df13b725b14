import { Injectable } from '@nestjs/common';
import { RandomSource } from '../common/random-source';
import { CapacityAlternative, UnsatisfiableError } from '../common/domain-errors';
import { AppConfig } from '../config/app-config';
import { allTogether, settled, together } from '../database/statements-together';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { DEFAULT_POLICY, getPolicy, schedule } from '../scheduler/scheduler';
import type { Placement, PlacementPolicy, PlacementRequest } from '../scheduler/scheduler.types';
import { gpuModelsOf, infeasibility } from './feasibility';
import { CandidateHost, FleetRepository, GpuNeed, PlacementResources } from './fleet.repository';
import { canFit, isWholeGpuFree, profileFor } from '../scheduler/gpu-slots';
import { IdGenerator } from '../common/id-generator';
import { MetricsService } from '../metrics/metrics.service';
import { matchGpuModel } from './domain/gpu-model';
import { findVgpuProfile, GpuProfile, migProfilesFor, milliGpuOf, VGPU_PROFILES } from './domain/gpu-profiles';
import { GpuEntity } from './gpu.entity';

/** The base of the PostgreSQL advisory lock keys placements take for their transaction, shared by every replica. */
const PLACEMENT_LOCK_KEY = 740_421_978;

/**
 * One lock per GPU model asked for (and one for "any model"): requests for
 * different models never pick the same GPU, so they need not wait for each
 * other. The lock only saves retries; correctness comes from the
 * conditional claims, which also catch an any-model request and a
 * model-specific one racing for the same GPU.
 */
export function placementLockKey(model: string | null | undefined): number {
  let hash = 0x811c9dc5;
  for (const char of model ?? '*') hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return PLACEMENT_LOCK_KEY * 65_536 + (hash & 0xffff);
}
const MAX_GPUS_PER_VM = 8;

export interface PlacementPlan {
  hostId: string;
  hostName: string;
  region: string;
  /** The host's libvirt URI as the plan read it, so the create's hypervisor call needs no read of its own. */
  hypervisorUri: string | null;
  /** Whole GPUs (gpu_count requests). */
  gpus: GpuEntity[];
  /** The fractional claim (gpu_profile requests): the profile's slots on one shared GPU. */
  slotClaim?: PlannedSlotClaim | null;
}

export interface PlannedSlotClaim {
  gpu: GpuEntity;
  profile: string;
  slots: number[];
}

/**
 * Raised when a conditional claim finds the plan stale; the caller re-plans in
 * a new transaction. `fullHostId` names a host whose CPU, memory or disk could
 * not take the request when it was claimed: others' claims, uncommitted when
 * the plan read the fleet, filled it. A new plan reads only committed rows,
 * so it would choose that host again; the caller leaves it out instead.
 */
export class PlacementConflictError extends Error {
  constructor(
    what: string,
    readonly fullHostId: string | null = null,
  ) {
    super(`Placement conflict: ${what} changed while placing`);
  }
}

/** The hosts a re-plan leaves out: those held for waiting requests, and those this request found full. */
export function withoutHosts(held: ReadonlySet<string>, full: ReadonlySet<string> | undefined): ReadonlySet<string> {
  return !full || full.size === 0 ? held : new Set([...held, ...full]);
}

function withoutExcluded(hosts: readonly CandidateHost[], excluded: ReadonlySet<string>): readonly CandidateHost[] {
  return excluded.size === 0 ? hosts : hosts.filter((h) => !excluded.has(h.id));
}

/** The GPUs the request needs, as the candidate read filters hosts by them. */
export function gpuNeedOf(request: PlacementRequest): GpuNeed {
  const model = request.gpuModel ?? null;
  if (!request.gpuProfile) return { count: request.gpuCount, model };
  return { count: 0, model, sharedMode: findVgpuProfile(request.gpuProfile) ? 'vgpu' : 'mig' };
}

export function resourcesOf(request: PlacementRequest): PlacementResources {
  return { cpuCores: request.cpuCores, memoryMib: request.memoryMib, diskGib: request.diskGib };
}

/**
 * Chooses a host (and GPUs) for a VM and claims them inside the caller's
 * transaction. Claims are conditional updates, so a stale plan can never
 * over-commit a host or bind a GPU twice; on PostgreSQL an advisory lock can
 * also serialise placements (GPU requests, and a CPU-only request's last
 * attempt) so concurrent replicas do not keep colliding on the same best GPUs.
 */
@Injectable()
export class PlacementService {
  readonly policy: PlacementPolicy;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly fleet: FleetRepository,
    private readonly random: RandomSource,
    config: AppConfig,
    private readonly ids: IdGenerator,
    private readonly metrics: MetricsService,
  ) {
    this.policy = config.placementPolicy ? getPolicy(config.placementPolicy as PlacementPolicy['name']) : DEFAULT_POLICY;
  }

  /** Records a plan's time (vmplane_placement_duration_seconds): whether it found room, and whether the kept snapshot decided. */
  private observePlan(startedAt: number, placed: boolean, fromSnapshot: boolean): void {
    this.metrics.placementDuration.observe({ outcome: placed ? 'placed' : 'no_fit', fleet: fromSnapshot ? 'snapshot' : 'database' }, (performance.now() - startedAt) / 1000);
  }

  /** A claim found the plan stale: counted (vmplane_placement_conflicts_total), then thrown for the caller to plan again. */
  private conflict(resource: 'host' | 'gpu' | 'slot', what: string, fullHostId: string | null = null): PlacementConflictError {
    this.metrics.placementConflicts.inc({ resource });
    return new PlacementConflictError(what, fullHostId);
  }

  /**
   * `serialise` takes the placement lock (PostgreSQL) for this transaction before reading the fleet;
   * `exclude` names hosts the plan must not use (held for requests waiting for capacity). It may still be
   * being read: the fleet's reads then leave without waiting for it (statements-together.ts), and it is
   * awaited once they are back.
   */
  async plan(tx: Tx, request: PlacementRequest, serialise = true, exclude: ReadonlySet<string> | Promise<ReadonlySet<string>> = new Set()): Promise<PlacementPlan | null> {
    const startedAt = performance.now();
    // Awaited below; meanwhile a failure of its read must not count as an unhandled rejection.
    if (exclude instanceof Promise) exclude.catch(() => undefined);
    let fleet: { hosts: readonly CandidateHost[]; cached: boolean };
    try {
      if (serialise) await this.uow.serialise(tx, placementLockKey(request.gpuModel));
      fleet = await this.fleet.placementHosts(tx);
    } catch (error) {
      // Its read went first: when it failed, the transaction's later statements failed because it did.
      await exclude;
      throw error;
    }
    const excluded = await exclude;
    let hosts = withoutExcluded(fleet.hosts, excluded);
    let decision = schedule(hosts, request, this.policy, () => this.random.next());
    let gpus = decision ? await this.gpusOf(tx, decision) : [];
    // A kept snapshot may be behind another replica: it may miss capacity given back (nothing fits), or show as
    // free GPUs that were bound since (their rows, read for the plan anyway, say so). Then the database decides,
    // for this request's hosts only; the conditional claims catch the rest.
    const stale = fleet.cached && (!decision || (decision.gpuIds.length > 0 && gpus.some((gpu) => gpu.vmId !== null || gpu.liveClaims > 0)));
    if (stale) {
      const snapshotDecision = decision;
      hosts = withoutExcluded(await this.fleet.loadCandidates(tx, resourcesOf(request), request.region, gpuNeedOf(request)), excluded);
      decision = schedule(hosts, request, this.policy, () => this.random.next());
      // The snapshot was wrong for this request (bound GPUs, or room it did not show): the next plan reads it again.
      if (snapshotDecision || decision) this.fleet.forgetPlacementSnapshot();
      gpus = decision ? await this.gpusOf(tx, decision) : [];
    }
    this.observePlan(startedAt, decision !== null, fleet.cached && !stale);
    if (!decision) return null;
    const host = hosts.find((h) => h.id === decision.hostId)!;
    const [claim] = decision.claims;
    const slotClaim = claim ? { gpu: gpus.find((g) => g.id === claim.gpuId)!, profile: claim.profile, slots: claim.slots } : null;
    return { hostId: host.id, hostName: host.name, region: host.region, hypervisorUri: host.hypervisorUri, gpus: slotClaim ? [] : gpus, slotClaim };
  }

  /** The rows of the GPUs a decision names: whole ones, or the one its fractional claim is on. */
  private gpusOf(tx: Tx, decision: Placement): Promise<GpuEntity[]> {
    const ids = decision.gpuIds.length > 0 ? decision.gpuIds : decision.claims.map((c) => c.gpuId);
    return ids.length > 0 ? this.fleet.gpuDetails(tx, ids) : Promise.resolve([]);
  }

  /**
   * Claims the plan for the VM (whose row must already exist), or throws PlacementConflictError. The host's
   * counters, its GPUs and their allocation rows are sent together, in that (lock) order (statements-together.ts).
   */
  async claim(tx: Tx, vmId: string, plan: PlacementPlan, request: PlacementRequest, allocationIds: string[]): Promise<void> {
    const gpuIds = plan.gpus.map((g) => g.id);
    const gpus = gpuIds.length > 0;
    const [host, bound, allocated] = await together(tx, [
      () => this.fleet.claimHost(tx, plan.hostId, resourcesOf(request)),
      gpus ? () => this.fleet.bindGpus(tx, vmId, plan.hostId, gpuIds) : null,
      gpus ? () => this.fleet.insertAllocations(tx, gpuIds.map((gpuId, i) => ({ id: allocationIds[i], gpuId, vmId }))) : null,
    ]);
    if (!settled(host)) throw this.conflict('host', `host ${plan.hostName}`, plan.hostId);
    if ((settled(bound) ?? 0) !== gpuIds.length) throw this.conflict('gpu', 'a GPU');
    settled(allocated);
    if (plan.slotClaim) {
      const { gpu, profile, slots } = plan.slotClaim;
      const sharingMode = gpu.sharingMode === 'vgpu' ? 'vgpu' : 'mig';
      const claimed = await this.fleet.claimGpuSlots(tx, vmId, { gpuId: gpu.id, profile, slots, sharingMode }, slots.map(() => this.ids.next()));
      if (!claimed) throw this.conflict('slot', `a slot of GPU ${gpu.index} on ${plan.hostName}`);
    }
  }

  /** Gives a VM's host capacity and GPUs back, the host's row and its GPUs sent together. Callers make sure this happens once per VM. */
  async release(tx: Tx, vm: { id: string; hostId: string | null; gpuCount: number; gpuProfile?: string | null } & PlacementResources, now: Date): Promise<void> {
    const { hostId } = vm;
    await allTogether(tx, [hostId ? () => this.fleet.releaseHost(tx, hostId, vm) : null, vm.gpuCount > 0 ? () => this.fleet.unbindGpus(tx, vm.id, now) : null]);
    if (vm.gpuProfile) await this.fleet.releaseGpuSlots(tx, vm.id, now);
  }

  /**
   * The fleet's id for a GPU model as people write it (`H100`, `NVIDIA A100 80GB`): one read of the fleet's
   * shapes, for a name that is not already an id. None, or several: UnsatisfiableError naming the choices.
   */
  async resolveGpuModel(input: string): Promise<string> {
    const known = gpuModelsOf(await this.uow.read((tx) => this.fleet.shapes(tx)));
    const found = matchGpuModel(input, known);
    if (found.model !== null) return found.model;
    if (found.matches.length > 1) {
      throw new UnsatisfiableError('gpu_model', `GPU model ${input} could be ${found.matches.join(' or ')}; name one`, { gpu_models: found.matches });
    }
    throw new UnsatisfiableError('gpu_model', `no host has GPU model ${input}`, { gpu_models: known });
  }

  /** Throws UnsatisfiableError when no host could ever hold the request, not even active and empty. */
  async assertSatisfiable(tx: Tx, request: PlacementRequest): Promise<void> {
    const found = infeasibility(request, await this.fleet.shapes(tx));
    if (found) throw new UnsatisfiableError(found.field, found.reason, found.available);
  }

  /**
   * What would fit right now for a request that did not: the same count of
   * another model (or region), or the largest count of the requested model.
   */
  async alternatives(tx: Tx, request: PlacementRequest): Promise<CapacityAlternative[]> {
    if (request.gpuProfile) return this.fractionalAlternatives(tx, request, request.gpuProfile);
    const perHost = await this.fleet.freeGpusPerHost(tx, resourcesOf(request));
    const largest = new Map<string, { region: string; model: string; count: number }>();
    for (const row of perHost) {
      const key = `${row.region}\u0000${row.model}`;
      const count = Math.min(MAX_GPUS_PER_VM, row.free);
      if ((largest.get(key)?.count ?? 0) < count) largest.set(key, { region: row.region, model: row.model, count });
    }
    const options: CapacityAlternative[] = [];
    for (const { region, model, count } of largest.values()) {
      if (request.region && request.region !== region) continue;
      const sameModel = !request.gpuModel || request.gpuModel === model;
      if (count >= request.gpuCount && !sameModel) options.push({ gpu_model: model, gpu_count: request.gpuCount, region });
      else if (sameModel && count > 0 && count < request.gpuCount) options.push({ gpu_model: model, gpu_count: count, region });
    }
    return options.sort((a, b) => b.gpu_count - a.gpu_count || String(a.gpu_model).localeCompare(String(b.gpu_model)) || a.region.localeCompare(b.region));
  }

  /**
   * What would fit now instead of a profile that did not: per region and model, the smallest vGPU size or MIG
   * profile of at least the request's weight that one host can still take, else one whole GPU.
   */
  private async fractionalAlternatives(tx: Tx, request: PlacementRequest, profileName: string): Promise<CapacityAlternative[]> {
    const hosts = await this.fleet.loadCandidates(tx, resourcesOf(request), request.region);
    const weight = milliGpuOf({ gpuCount: 0, gpuProfile: profileName, gpuModel: request.gpuModel });
    const found = new Map<string, CapacityAlternative>();
    const offer = (key: string, alternative: CapacityAlternative) => {
      if (!found.has(key)) found.set(key, alternative);
    };
    for (const host of hosts) {
      for (const gpu of host.gpus) {
        if (request.gpuModel === gpu.model && profileFor(gpu, profileName) !== null) continue; // the same ask: it did not fit
        const profiles: GpuProfile[] = gpu.sharingMode === 'mig' ? [...migProfilesFor(gpu.model)] : gpu.sharingMode === 'vgpu' ? [...VGPU_PROFILES] : [];
        const fitting = profiles
          .filter((p) => p.milliGpu >= weight && !(p.kind === 'mig' && p.mediaExtensions) && canFit(gpu, p))
          .sort((a, b) => a.milliGpu - b.milliGpu)[0];
        if (fitting) offer(`${host.region}\u0000${gpu.model}\u0000${fitting.name}`, { gpu_model: gpu.model, gpu_count: 0, gpu_profile: fitting.name, region: host.region });
        else if (isWholeGpuFree(gpu)) offer(`${host.region}\u0000${gpu.model}\u0000whole`, { gpu_model: gpu.model, gpu_count: 1, region: host.region });
      }
    }
    return [...found.values()].sort(
      (a, b) => Number(Boolean(b.gpu_profile)) - Number(Boolean(a.gpu_profile)) || String(a.gpu_model).localeCompare(String(b.gpu_model)) || a.region.localeCompare(b.region),
    );
  }
}
