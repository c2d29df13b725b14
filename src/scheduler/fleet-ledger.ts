import { findGpuProfile, GpuProfile, MILLI_PER_GPU } from '../fleet/domain/gpu-profiles';
import { claimProblem, claimSlots, isWholeGpuFree, releaseSlots } from './gpu-slots';
import { DEFAULT_POLICY, schedule } from './scheduler';
import { GpuSlotClaim, Placement, PlacementRequest, SchedulerGpu, SchedulerHost } from './scheduler.types';

/**
 * An in-memory fleet that placements are applied to and released from, for
 * replays (bench/placement.ts) and property tests. The app keeps this state
 * in its database instead. Both operations check the placement against the
 * fleet and throw before changing anything, so a bad decision surfaces at once.
 */
export interface FleetLedger {
  readonly hosts: SchedulerHost[];
  readonly hostById: ReadonlyMap<string, SchedulerHost>;
  readonly gpuById: ReadonlyMap<string, { host: SchedulerHost; gpu: SchedulerGpu }>;
  readonly totalGpus: number;
  /** GPUs held whole or in part. */
  allocatedGpus: number;
  /** GPU units held, in milli-GPUs: 1000 per whole GPU, the profile's weight per claim. */
  allocatedMilli: number;
}

/** Takes ownership of `hosts`: apply and release mutate them (and bump their version). Hosts must start with nothing claimed. */
export function createFleetLedger(hosts: SchedulerHost[]): FleetLedger {
  const hostById: Map<string, SchedulerHost> = new Map<string, SchedulerHost>();
  const gpuById: Map<string, { host: SchedulerHost; gpu: SchedulerGpu }> = new Map();
  let allocatedGpus: number = 0;
  for (const host of hosts) {
    if (hostById.has(host.id)) throw new Error(`duplicate host id ${host.id}`);
    hostById.set(host.id, host);
    host.version = host.version ?? 0;
    for (const gpu of host.gpus) {
      if (gpuById.has(gpu.id)) throw new Error(`duplicate GPU id ${gpu.id}`);
      if ((gpu.usedSlots ?? 0) !== 0) throw new Error(`GPU ${gpu.id} starts with claimed slots`);
      gpuById.set(gpu.id, { host, gpu });
      if (!gpu.free) allocatedGpus++;
    }
  }
  return { hosts, hostById, gpuById, totalGpus: gpuById.size, allocatedGpus, allocatedMilli: allocatedGpus * MILLI_PER_GPU };
}

/**
 * For each task (its requests, tried in turn), whether none of them fits the fresh fleet `hosts` (nothing
 * placed yet): more GPUs, cores or memory than any host has, or a model no host has. A replay skips those,
 * as the API refuses them with a 4xx before placement; they say nothing about fragmentation. `hosts` is
 * not changed.
 */
export function neverFitting(hosts: readonly SchedulerHost[], tasks: readonly (readonly PlacementRequest[])[]): boolean[] {
  const empty: SchedulerHost[] = createFleetLedger(structuredClone(hosts) as SchedulerHost[]).hosts;
  return tasks.map((alternatives) => alternatives.every((req: PlacementRequest) => schedule(empty, req, DEFAULT_POLICY) === null));
}

export function applyPlacement(ledger: FleetLedger, placement: Placement, req: PlacementRequest): void {
  const host: SchedulerHost = placedHost(ledger, placement, req);
  if (
    host.usedCpuCores + req.cpuCores > host.cpuCores ||
    host.usedMemoryMib + req.memoryMib > host.memoryMib ||
    host.usedDiskGib + req.diskGib > host.diskGib
  ) {
    throw new Error(`placement on ${host.id} exceeds its CPU, memory or disk`);
  }
  const gpus: SchedulerGpu[] = placedGpus(ledger, placement, host);
  for (const gpu of gpus) {
    if (!isWholeGpuFree(gpu)) throw new Error(`GPU ${gpu.id} is already allocated or not in passthrough mode`);
  }
  const claimed: { gpu: SchedulerGpu; claim: GpuSlotClaim }[] = claimedGpus(ledger, placement, host, req);
  for (const { gpu, claim } of claimed) {
    const problem: string | null = claimProblem(gpu, claim);
    if (problem !== null) throw new Error(problem);
  }
  host.usedCpuCores += req.cpuCores;
  host.usedMemoryMib += req.memoryMib;
  host.usedDiskGib += req.diskGib;
  for (const gpu of gpus) gpu.free = false;
  ledger.allocatedGpus += gpus.length;
  ledger.allocatedMilli += gpus.length * MILLI_PER_GPU;
  for (const { gpu, claim } of claimed) {
    if (gpu.free) ledger.allocatedGpus++;
    claimSlots(gpu, claim);
    ledger.allocatedMilli += claimWeight(gpu, claim);
  }
  host.version = (host.version ?? 0) + 1;
}

export function releasePlacement(ledger: FleetLedger, placement: Placement, req: PlacementRequest): void {
  const host: SchedulerHost = placedHost(ledger, placement, req);
  if (
    host.usedCpuCores < req.cpuCores ||
    host.usedMemoryMib < req.memoryMib ||
    host.usedDiskGib < req.diskGib
  ) {
    throw new Error(`release on ${host.id} frees more than is in use`);
  }
  const gpus: SchedulerGpu[] = placedGpus(ledger, placement, host);
  for (const gpu of gpus) {
    if (gpu.free) throw new Error(`GPU ${gpu.id} is not allocated`);
  }
  const claimed: { gpu: SchedulerGpu; claim: GpuSlotClaim }[] = claimedGpus(ledger, placement, host, req);
  host.usedCpuCores -= req.cpuCores;
  host.usedMemoryMib -= req.memoryMib;
  host.usedDiskGib -= req.diskGib;
  for (const gpu of gpus) gpu.free = true;
  ledger.allocatedGpus -= gpus.length;
  ledger.allocatedMilli -= gpus.length * MILLI_PER_GPU;
  for (const { gpu, claim } of claimed) {
    const weight: number = claimWeight(gpu, claim);
    releaseSlots(gpu, claim);
    if (gpu.free) ledger.allocatedGpus--;
    ledger.allocatedMilli -= weight;
  }
  host.version = (host.version ?? 0) + 1;
}

function claimWeight(gpu: SchedulerGpu, claim: GpuSlotClaim): number {
  return (findGpuProfile(gpu.model, claim.profile) as GpuProfile).milliGpu;
}

function placedHost(ledger: FleetLedger, placement: Placement, req: PlacementRequest): SchedulerHost {
  const host: SchedulerHost | undefined = ledger.hostById.get(placement.hostId);
  if (host === undefined) throw new Error(`unknown host ${placement.hostId}`);
  if (placement.gpuIds.length !== req.gpuCount) {
    throw new Error(`placement has ${placement.gpuIds.length} GPUs, request asks for ${req.gpuCount}`);
  }
  const wantedClaims: number = req.gpuProfile ? 1 : 0;
  if (placement.claims.length !== wantedClaims) {
    throw new Error(`placement has ${placement.claims.length} fractional claims, request asks for ${wantedClaims}`);
  }
  return host;
}

function gpuOnHost(ledger: FleetLedger, id: string, host: SchedulerHost): SchedulerGpu {
  const entry: { host: SchedulerHost; gpu: SchedulerGpu } | undefined = ledger.gpuById.get(id);
  if (entry === undefined || entry.host !== host) throw new Error(`GPU ${id} is not on host ${host.id}`);
  return entry.gpu;
}

function placedGpus(ledger: FleetLedger, placement: Placement, host: SchedulerHost): SchedulerGpu[] {
  const gpus: SchedulerGpu[] = placement.gpuIds.map((id: string): SchedulerGpu => gpuOnHost(ledger, id, host));
  if (new Set(placement.gpuIds).size !== gpus.length) throw new Error('placement names a GPU twice');
  if (gpus.some((gpu: SchedulerGpu) => gpu.model !== gpus[0].model)) throw new Error('placement mixes GPU models');
  return gpus;
}

function claimedGpus(
  ledger: FleetLedger,
  placement: Placement,
  host: SchedulerHost,
  req: PlacementRequest,
): { gpu: SchedulerGpu; claim: GpuSlotClaim }[] {
  return placement.claims.map((claim: GpuSlotClaim) => {
    const gpu: SchedulerGpu = gpuOnHost(ledger, claim.gpuId, host);
    if (claim.profile !== req.gpuProfile) throw new Error(`claim is for ${claim.profile}, request asks for ${req.gpuProfile}`);
    if (req.gpuModel && gpu.model !== req.gpuModel) throw new Error(`GPU ${gpu.id} is a ${gpu.model}, request asks for ${req.gpuModel}`);
    return { gpu, claim };
  });
}
