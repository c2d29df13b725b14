import { Placement, PlacementRequest, SchedulerGpu, SchedulerHost } from './scheduler.types';

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
  allocatedGpus: number;
}

/** Takes ownership of `hosts`: apply and release mutate them. */
export function createFleetLedger(hosts: SchedulerHost[]): FleetLedger {
  const hostById: Map<string, SchedulerHost> = new Map<string, SchedulerHost>();
  const gpuById: Map<string, { host: SchedulerHost; gpu: SchedulerGpu }> = new Map();
  let allocatedGpus: number = 0;
  for (const host of hosts) {
    if (hostById.has(host.id)) throw new Error(`duplicate host id ${host.id}`);
    hostById.set(host.id, host);
    for (const gpu of host.gpus) {
      if (gpuById.has(gpu.id)) throw new Error(`duplicate GPU id ${gpu.id}`);
      gpuById.set(gpu.id, { host, gpu });
      if (!gpu.free) allocatedGpus++;
    }
  }
  return { hosts, hostById, gpuById, totalGpus: gpuById.size, allocatedGpus };
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
    if (!gpu.free) throw new Error(`GPU ${gpu.id} is already allocated`);
  }
  host.usedCpuCores += req.cpuCores;
  host.usedMemoryMib += req.memoryMib;
  host.usedDiskGib += req.diskGib;
  for (const gpu of gpus) gpu.free = false;
  ledger.allocatedGpus += gpus.length;
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
  host.usedCpuCores -= req.cpuCores;
  host.usedMemoryMib -= req.memoryMib;
  host.usedDiskGib -= req.diskGib;
  for (const gpu of gpus) gpu.free = true;
  ledger.allocatedGpus -= gpus.length;
}

function placedHost(ledger: FleetLedger, placement: Placement, req: PlacementRequest): SchedulerHost {
  const host: SchedulerHost | undefined = ledger.hostById.get(placement.hostId);
  if (host === undefined) throw new Error(`unknown host ${placement.hostId}`);
  if (placement.gpuIds.length !== req.gpuCount) {
    throw new Error(`placement has ${placement.gpuIds.length} GPUs, request asks for ${req.gpuCount}`);
  }
  return host;
}

function placedGpus(ledger: FleetLedger, placement: Placement, host: SchedulerHost): SchedulerGpu[] {
  const gpus: SchedulerGpu[] = placement.gpuIds.map((id: string): SchedulerGpu => {
    const entry: { host: SchedulerHost; gpu: SchedulerGpu } | undefined = ledger.gpuById.get(id);
    if (entry === undefined || entry.host !== host) throw new Error(`GPU ${id} is not on host ${host.id}`);
    return entry.gpu;
  });
  if (new Set(placement.gpuIds).size !== gpus.length) throw new Error('placement names a GPU twice');
  if (gpus.some((gpu: SchedulerGpu) => gpu.model !== gpus[0].model)) throw new Error('placement mixes GPU models');
  return gpus;
}
