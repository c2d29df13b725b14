import { findMigProfile, findVgpuProfile, GpuProfile, VgpuProfile } from '../fleet/domain/gpu-profiles';
import { canFit, chooseSlots, isWholeGpuFree, profileCapacityOn } from './gpu-slots';
import { GpuSlotClaim, Placement, PlacementRequest, SchedulerGpu, SchedulerHost } from './scheduler.types';

/*
 * Filtering is called for every host on every request (~1,500 hosts), so the
 * helpers below loop over the host's few GPUs instead of building arrays or
 * maps; only placementOn, called once per decision, allocates.
 *
 * Whole-GPU requests (gpuCount) take free passthrough GPUs only; a request
 * for a profile (gpuProfile) takes one instance on a GPU in the profile's
 * mode (vgpu or mig) whose model has it.
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

/** Free whole GPUs on the host, of one model when given, of any model otherwise. */
export function countFreeGpus(host: SchedulerHost, model?: string | null): number {
  let count: number = 0;
  for (const gpu of host.gpus) {
    if (isWholeGpuFree(gpu) && (!model || gpu.model === model)) count++;
  }
  return count;
}

/** Free whole GPUs (of the model when given), lowest index first. */
export function freeGpusOfModel(host: SchedulerHost, model?: string | null): SchedulerGpu[] {
  return host.gpus
    .filter((gpu: SchedulerGpu) => isWholeGpuFree(gpu) && (!model || gpu.model === model))
    .sort((a: SchedulerGpu, b: SchedulerGpu) => a.index - b.index);
}

/**
 * The one model whose free whole GPUs on this host can serve `gpuCount`
 * GPUs, or null. With a requested model that model is the only candidate;
 * without one, a host with several models gives the model with the fewest
 * free GPUs that still suffice (then the smallest id), so larger groups stay
 * whole. A VM never gets GPUs of two models.
 */
export function selectGpuModel(host: SchedulerHost, gpuCount: number, model?: string | null): string | null {
  if (model) return countFreeGpus(host, model) >= gpuCount ? model : null;
  // Fast path for the common host with one GPU model.
  let onlyModel: string | null = null;
  let freeCount: number = 0;
  let mixed: boolean = false;
  for (const gpu of host.gpus) {
    if (!isWholeGpuFree(gpu)) continue;
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
    if (!isWholeGpuFree(gpu) || seenFreeModelBefore(gpus, i)) continue;
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
    if (isWholeGpuFree(gpus[j]) && gpus[j].model === gpus[i].model) return true;
  }
  return false;
}

let memoRequest: PlacementRequest | null = null;
let memoName: string | null | undefined = null;
let memoVgpu: VgpuProfile | null = null;

/** The request's vGPU size, or null for a MIG name; resolved once per request, not once per GPU. */
function requestedVgpu(req: PlacementRequest): VgpuProfile | null {
  if (req !== memoRequest || req.gpuProfile !== memoName) {
    memoRequest = req;
    memoName = req.gpuProfile;
    memoVgpu = findVgpuProfile(req.gpuProfile as string);
  }
  return memoVgpu;
}

/**
 * The profile the request means on this GPU when the GPU can take one more
 * instance of it now (mode, model, one-size rule, free slots), else null.
 */
export function fittingProfile(gpu: SchedulerGpu, req: PlacementRequest): GpuProfile | null {
  if (req.gpuModel && gpu.model !== req.gpuModel) return null;
  const vgpu: VgpuProfile | null = requestedVgpu(req);
  let profile: GpuProfile | null = vgpu;
  if (vgpu !== null) {
    if (gpu.sharingMode !== 'vgpu') return null;
  } else {
    if (gpu.sharingMode !== 'mig') return null;
    profile = findMigProfile(gpu.model, req.gpuProfile as string);
    if (profile === null) return null;
  }
  return canFit(gpu, profile as GpuProfile) ? profile : null;
}

/** Whether some GPU on the host can take the request's profile now. */
export function hasFittingGpu(host: SchedulerHost, req: PlacementRequest): boolean {
  for (const gpu of host.gpus) {
    if (fittingProfile(gpu, req) !== null) return true;
  }
  return false;
}

/** Whether the request can be placed on the host right now. */
export function fits(host: SchedulerHost, req: PlacementRequest): boolean {
  if (!hasFreeResources(host, req)) return false;
  if (req.gpuProfile) return hasFittingGpu(host, req);
  return req.gpuCount === 0 || selectGpuModel(host, req.gpuCount, req.gpuModel) !== null;
}

/**
 * Which GPU a fractional request takes on a host:
 * - `first-fit`: the lowest-index GPU that fits;
 * - `best-fit`: the GPU left with the fewest further instances of the
 *   profile (so a vGPU joins a GPU that already holds its size before it
 *   opens an empty one, and MIG instances fill a partitioned GPU first),
 *   then the lowest index.
 */
export type GpuChoice = 'first-fit' | 'best-fit';

/** The claim the request gets on this host, or null when no GPU fits. */
export function claimOn(host: SchedulerHost, req: PlacementRequest, choice: GpuChoice): GpuSlotClaim | null {
  let chosen: SchedulerGpu | null = null;
  let chosenProfile: GpuProfile | null = null;
  let chosenRoom: number = Number.POSITIVE_INFINITY;
  for (const gpu of host.gpus) {
    const profile: GpuProfile | null = fittingProfile(gpu, req);
    if (profile === null) continue;
    const room: number = choice === 'best-fit' ? profileCapacityOn(gpu, profile) : 0;
    if (chosen === null || room < chosenRoom || (room === chosenRoom && gpu.index < chosen.index)) {
      chosen = gpu;
      chosenProfile = profile;
      chosenRoom = room;
    }
  }
  if (chosen === null || chosenProfile === null) return null;
  const slots: number[] = chooseSlots(chosen, chosenProfile) as number[];
  return { gpuId: chosen.id, profile: chosenProfile.name, slots };
}

/**
 * The placement on this host: the selected model's free whole GPUs with the
 * lowest indexes, or one fractional claim chosen by `choice`.
 */
export function placementOn(host: SchedulerHost, req: PlacementRequest, choice: GpuChoice = 'best-fit'): Placement {
  if (req.gpuProfile) {
    const claim: GpuSlotClaim | null = claimOn(host, req, choice);
    if (claim === null) throw new Error(`host ${host.id} has no GPU that can take a ${req.gpuProfile}`);
    return { hostId: host.id, gpuIds: [], claims: [claim] };
  }
  if (req.gpuCount === 0) return { hostId: host.id, gpuIds: [], claims: [] };
  const model: string | null = selectGpuModel(host, req.gpuCount, req.gpuModel);
  if (model === null) {
    throw new Error(`host ${host.id} has fewer than ${req.gpuCount} free GPUs of one model`);
  }
  const gpuIds: string[] = freeGpusOfModel(host, model)
    .slice(0, req.gpuCount)
    .map((gpu: SchedulerGpu) => gpu.id);
  return { hostId: host.id, gpuIds, claims: [] };
}

/** Tie-break between two hosts that score the same: by name, then by id. */
export function compareHostsByName(a: SchedulerHost, b: SchedulerHost): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}
