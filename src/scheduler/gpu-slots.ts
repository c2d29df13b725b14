import {
  findGpuProfile,
  findVgpuProfile,
  GpuProfile,
  GpuSharingMode,
  MIG_MEDIA_SLOT,
  MIG_MEMORY_SLICES,
  MigProfile,
  migProfilesFor,
  MILLI_PER_GPU,
  VgpuProfile,
} from '../fleet/domain/gpu-profiles';
import type { GpuOccupancy, GpuSlotClaim, SchedulerGpu, SchedulerHost } from './scheduler.types';

/*
 * Slot arithmetic on one GPU's occupancy (see GpuOccupancy for how it maps
 * onto database rows). Pure: nothing here mutates its arguments except
 * claimSlots and releaseSlots, which the in-memory ledger uses.
 *
 * canFit is on the scheduler's hot path (every GPU of every candidate host),
 * so it is bit arithmetic with no allocation.
 */

export function sharingModeOf(gpu: GpuOccupancy): GpuSharingMode {
  return gpu.sharingMode ?? 'passthrough';
}

/** Free as a whole GPU: a passthrough GPU that no VM holds. */
export function isWholeGpuFree(gpu: GpuOccupancy): boolean {
  return gpu.free && (gpu.sharingMode === undefined || gpu.sharingMode === 'passthrough');
}

/** The profile on this GPU's model and mode, or null when the GPU cannot serve it at all. */
export function profileFor(gpu: GpuOccupancy, profileName: string): GpuProfile | null {
  const profile: GpuProfile | null = findGpuProfile(gpu.model, profileName);
  if (profile === null || profile.kind !== sharingModeOf(gpu)) return null;
  return profile;
}

/** The slots a MIG placement starting at `start` holds, as a bit mask. */
export function migPlacementMask(profile: MigProfile, start: number): number {
  const memory: number = ((1 << profile.memorySlices) - 1) << start;
  return profile.mediaExtensions ? memory | (1 << MIG_MEDIA_SLOT) : memory;
}

function usedSlotsOf(gpu: GpuOccupancy): number {
  return gpu.usedSlots ?? 0;
}

/** Whether the GPU's mode and the one-size rule let it take this vGPU size at all (full or not). */
function holdsVgpuSize(gpu: GpuOccupancy, profile: VgpuProfile): boolean {
  return gpu.sharingMode === 'vgpu' && (gpu.vgpuProfile == null || gpu.vgpuProfile === profile.name);
}

/** Whether one more instance of `profile` fits on the GPU now. `profile` must be valid for the GPU's model. */
export function canFit(gpu: GpuOccupancy, profile: GpuProfile): boolean {
  const used: number = usedSlotsOf(gpu);
  if (profile.kind === 'vgpu') {
    if (!holdsVgpuSize(gpu, profile)) return false;
    return (used & ((1 << profile.perGpu) - 1)) !== (1 << profile.perGpu) - 1;
  }
  if (gpu.sharingMode !== 'mig') return false;
  for (const start of profile.startSlots) {
    if ((used & migPlacementMask(profile, start)) === 0) return true;
  }
  return false;
}

/** Instances of `profile` that fit on the GPU now, placed greedily from the lowest start. */
export function profileCapacityOn(gpu: GpuOccupancy, profile: GpuProfile): number {
  let used: number = usedSlotsOf(gpu);
  if (profile.kind === 'vgpu') {
    if (!holdsVgpuSize(gpu, profile)) return 0;
    let free: number = 0;
    for (let slot: number = 0; slot < profile.perGpu; slot++) if ((used & (1 << slot)) === 0) free++;
    return free;
  }
  if (gpu.sharingMode !== 'mig') return 0;
  // All placements of one profile have one length, so taking the lowest free
  // start each time packs the most instances (interval scheduling).
  let count: number = 0;
  for (const start of profile.startSlots) {
    const mask: number = migPlacementMask(profile, start);
    if ((used & mask) === 0) {
      used |= mask;
      count++;
    }
  }
  return count;
}

/**
 * How many instances of `profileName` fit on these GPUs right now, counting
 * only GPUs whose mode and model can serve it and respecting the slot
 * layout: seven free 1g slots do not make a 7g. `model` restricts the count
 * to one model.
 */
export function profileCapacity(gpus: readonly GpuOccupancy[], profileName: string, model?: string | null): number {
  let total: number = 0;
  for (const gpu of gpus) {
    if (model && gpu.model !== model) continue;
    const profile: GpuProfile | null = profileFor(gpu, profileName);
    if (profile !== null) total += profileCapacityOn(gpu, profile);
  }
  return total;
}

/** The most whole GPUs of one model (of `model` when given) one VM can get on this host now. */
export function largestWholeGpuCount(host: SchedulerHost, model?: string | null): number {
  const counts: Map<string, number> = new Map<string, number>();
  let largest: number = 0;
  for (const gpu of host.gpus) {
    if (!isWholeGpuFree(gpu) || (model && gpu.model !== model)) continue;
    const count: number = (counts.get(gpu.model) ?? 0) + 1;
    counts.set(gpu.model, count);
    largest = Math.max(largest, count);
  }
  return largest;
}

/**
 * The slots one more instance of `profile` takes on this GPU, or null when
 * it does not fit. vGPUs take the lowest free slot. A MIG instance takes the
 * valid start that leaves the most room for larger profiles: the remaining
 * capacity of each of the model's profiles, largest first, compared in turn
 * (so a 1g goes to slot 6 of an empty GPU, where it blocks the 7g and one 3g
 * but leaves the 4g, rather than slot 0, where it blocks all three).
 */
export function chooseSlots(gpu: GpuOccupancy, profile: GpuProfile): number[] | null {
  const used: number = usedSlotsOf(gpu);
  if (profile.kind === 'vgpu') {
    if (!canFit(gpu, profile)) return null;
    for (let slot: number = 0; slot < profile.perGpu; slot++) if ((used & (1 << slot)) === 0) return [slot];
    return null;
  }
  if (gpu.sharingMode !== 'mig') return null;
  const larger: MigProfile[] = migProfilesFor(gpu.model)
    .filter((other: MigProfile) => !other.mediaExtensions)
    .sort((a: MigProfile, b: MigProfile) => b.computeSlices - a.computeSlices || b.memorySlices - a.memorySlices);
  let bestMask: number = -1;
  let bestRoom: number[] | null = null;
  for (const start of profile.startSlots) {
    const mask: number = migPlacementMask(profile, start);
    if ((used & mask) !== 0) continue;
    const after: GpuOccupancy = { ...gpu, usedSlots: used | mask };
    const room: number[] = larger.map((other: MigProfile) => profileCapacityOn(after, other));
    if (bestRoom === null || compareLexicographic(room, bestRoom) > 0) {
      bestRoom = room;
      bestMask = mask;
    }
  }
  return bestRoom === null ? null : slotsOfMask(bestMask);
}

function compareLexicographic(a: readonly number[], b: readonly number[]): number {
  for (let i: number = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

export function slotsOfMask(mask: number): number[] {
  const slots: number[] = [];
  for (let slot: number = 0; mask >> slot !== 0; slot++) if ((mask & (1 << slot)) !== 0) slots.push(slot);
  return slots;
}

export function maskOfSlots(slots: readonly number[]): number {
  let mask: number = 0;
  for (const slot of slots) mask |= 1 << slot;
  return mask;
}

/**
 * Why `claim` cannot be taken on `gpu` now, or null when it can: the
 * profile must exist for the GPU's model and mode, the slots must be exactly
 * one valid placement (MIG) or one vGPU index below the size's count, none
 * may be held, and a vGPU must match the size the GPU holds.
 */
export function claimProblem(gpu: SchedulerGpu, claim: GpuSlotClaim): string | null {
  const profile: GpuProfile | null = profileFor(gpu, claim.profile);
  if (profile === null) {
    return `GPU ${gpu.id} (${gpu.model}, ${sharingModeOf(gpu)}) has no profile "${claim.profile}"`;
  }
  const mask: number = maskOfSlots(claim.slots);
  if (claim.slots.length === 0 || slotsOfMask(mask).join() !== claim.slots.join()) {
    return `claim on GPU ${gpu.id} must list distinct slots in ascending order`;
  }
  if (profile.kind === 'vgpu') {
    if (claim.slots.length !== 1 || claim.slots[0] >= profile.perGpu) {
      return `a ${profile.name} vGPU takes one slot below ${profile.perGpu}, not [${claim.slots.join(', ')}]`;
    }
    if (!holdsVgpuSize(gpu, profile)) {
      return `GPU ${gpu.id} holds ${String(gpu.vgpuProfile)} vGPUs; one GPU holds one vGPU size at a time`;
    }
  } else if (!profile.startSlots.some((start: number) => migPlacementMask(profile, start) === mask)) {
    return `slots [${claim.slots.join(', ')}] are not a valid ${profile.name} placement`;
  }
  if ((usedSlotsOf(gpu) & mask) !== 0) return `GPU ${gpu.id} already has slot(s) of [${claim.slots.join(', ')}] claimed`;
  return null;
}

/** Takes the claim's slots on the GPU; throws (changing nothing) when claimProblem finds one. */
export function claimSlots(gpu: SchedulerGpu, claim: GpuSlotClaim): void {
  const problem: string | null = claimProblem(gpu, claim);
  if (problem !== null) throw new Error(problem);
  gpu.usedSlots = usedSlotsOf(gpu) | maskOfSlots(claim.slots);
  if (gpu.sharingMode === 'vgpu') gpu.vgpuProfile = claim.profile;
  gpu.free = false;
}

/** Gives the claim's slots back; the last vGPU to go clears the GPU's size. */
export function releaseSlots(gpu: SchedulerGpu, claim: GpuSlotClaim): void {
  const mask: number = maskOfSlots(claim.slots);
  if ((usedSlotsOf(gpu) & mask) !== mask) throw new Error(`GPU ${gpu.id} does not hold slots [${claim.slots.join(', ')}]`);
  if (gpu.sharingMode === 'vgpu' && gpu.vgpuProfile !== claim.profile) {
    throw new Error(`GPU ${gpu.id} holds ${String(gpu.vgpuProfile)} vGPUs, not ${claim.profile}`);
  }
  gpu.usedSlots = usedSlotsOf(gpu) & ~mask;
  if (gpu.usedSlots === 0) {
    gpu.free = true;
    if (gpu.sharingMode === 'vgpu') gpu.vgpuProfile = null;
  }
}

export function popcount(mask: number): number {
  let count: number = 0;
  for (let m: number = mask; m !== 0; m &= m - 1) count++;
  return count;
}

/**
 * The GPU's unclaimed capacity in milli-GPUs, for ranking hosts: a free
 * passthrough GPU or an empty shared GPU is 1000; a vGPU GPU has its free
 * vGPUs of the size it holds; a MIG GPU has 125 per free memory slice.
 */
export function freeMilliGpu(gpu: GpuOccupancy): number {
  const used: number = usedSlotsOf(gpu);
  if (gpu.sharingMode === undefined || gpu.sharingMode === 'passthrough') return gpu.free ? MILLI_PER_GPU : 0;
  if (used === 0) return MILLI_PER_GPU;
  if (gpu.sharingMode === 'mig') return ((MIG_MEMORY_SLICES - popcount(used & 0xff)) * MILLI_PER_GPU) / MIG_MEMORY_SLICES;
  const size: VgpuProfile | null = gpu.vgpuProfile ? findVgpuProfile(gpu.vgpuProfile) : null;
  return size === null ? 0 : (size.perGpu - popcount(used)) * size.milliGpu;
}
