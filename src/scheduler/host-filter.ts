import { Placement, PlacementRequest, SchedulerGpu, SchedulerHost } from './scheduler.types';

/*
 * Filtering is called for every host on every request (~1,500 hosts), so the
 * helpers below loop over the host's few GPUs instead of building arrays or
 * maps; only placementOn, called once per decision, allocates.
 */

/** Active, in the requested region, and with enough free CPU, memory and disk. GPUs are not checked. */
export function hasFreeResources(host: SchedulerHost, req: PlacementRequest): boolean {
  return (
    host.state === 'active' &&
    (!req.region || host.region === req.region) &&
    host.usedCpuCores + req.cpuCores <= host.cpuCores &&
    host.usedMemoryMib + req.memoryMib <= host.memoryMib &&
    host.usedDiskGib + req.diskGib <= host.diskGib
  );
}

/** Free GPUs on the host, of one model when given, of any model otherwise. */
export function countFreeGpus(host: SchedulerHost, model?: string | null): number {
  let count: number = 0;
  for (const gpu of host.gpus) {
    if (gpu.free && (!model || gpu.model === model)) count++;
  }
  return count;
}

/** Free GPUs (of the model when given), lowest index first. */
export function freeGpusOfModel(host: SchedulerHost, model?: string | null): SchedulerGpu[] {
  return host.gpus
    .filter((gpu: SchedulerGpu) => gpu.free && (!model || gpu.model === model))
    .sort((a: SchedulerGpu, b: SchedulerGpu) => a.index - b.index);
}

/**
 * The one model whose free GPUs on this host can serve `gpuCount` GPUs, or
 * null. With a requested model that model is the only candidate; without one,
 * a host with several models gives the model with the fewest free GPUs that
 * still suffice (then the smallest id), so larger groups stay whole.
 * A VM never gets GPUs of two models.
 */
export function selectGpuModel(host: SchedulerHost, gpuCount: number, model?: string | null): string | null {
  if (model) return countFreeGpus(host, model) >= gpuCount ? model : null;
  // Fast path for the common host with one GPU model.
  let onlyModel: string | null = null;
  let freeCount: number = 0;
  let mixed: boolean = false;
  for (const gpu of host.gpus) {
    if (!gpu.free) continue;
    if (onlyModel === null) onlyModel = gpu.model;
    else if (gpu.model !== onlyModel) mixed = true;
    freeCount++;
  }
  if (!mixed) return freeCount >= gpuCount ? onlyModel : null;
  let bestModel: string | null = null;
  let bestCount: number = Number.POSITIVE_INFINITY;
  const gpus: SchedulerGpu[] = host.gpus;
  for (let i: number = 0; i < gpus.length; i++) {
    const gpu: SchedulerGpu = gpus[i];
    if (!gpu.free || seenFreeModelBefore(gpus, i)) continue;
    const count: number = countFreeGpus(host, gpu.model);
    if (count >= gpuCount && (count < bestCount || (count === bestCount && gpu.model < (bestModel as string)))) {
      bestModel = gpu.model;
      bestCount = count;
    }
  }
  return bestModel;
}

function seenFreeModelBefore(gpus: SchedulerGpu[], i: number): boolean {
  for (let j: number = 0; j < i; j++) {
    if (gpus[j].free && gpus[j].model === gpus[i].model) return true;
  }
  return false;
}

/** Whether the request can be placed on the host right now. */
export function fits(host: SchedulerHost, req: PlacementRequest): boolean {
  if (!hasFreeResources(host, req)) return false;
  return req.gpuCount === 0 || selectGpuModel(host, req.gpuCount, req.gpuModel) !== null;
}

/** The placement on this host: the selected model's free GPUs with the lowest indexes. */
export function placementOn(host: SchedulerHost, req: PlacementRequest): Placement {
  if (req.gpuCount === 0) return { hostId: host.id, gpuIds: [] };
  const model: string | null = selectGpuModel(host, req.gpuCount, req.gpuModel);
  if (model === null) {
    throw new Error(`host ${host.id} has fewer than ${req.gpuCount} free GPUs of one model`);
  }
  const gpuIds: string[] = freeGpusOfModel(host, model)
    .slice(0, req.gpuCount)
    .map((gpu: SchedulerGpu) => gpu.id);
  return { hostId: host.id, gpuIds };
}

/** Tie-break between two hosts that score the same: by name, then by id. */
export function compareHostsByName(a: SchedulerHost, b: SchedulerHost): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}
