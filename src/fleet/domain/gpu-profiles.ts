/**
 * How a physical GPU can be shared, and the profiles a VM can ask for
 * instead of whole GPUs (`gpu_profile` as the alternative to `gpu_count`).
 *
 * - `passthrough`: the whole GPU goes to one VM (VFIO), as before.
 * - `vgpu`: NVIDIA time-sliced vGPU. Each vGPU gets a fixed share of the
 *   frame buffer and time-slices the engines. Profiles are named by that
 *   share: `1/8`, `1/4`, `1/2`, `1`. A GPU holds vGPUs of one size at a time
 *   (NVIDIA vGPU software user guide, "homogeneous" time-sliced vGPUs).
 * - `mig`: MIG-backed vGPU. The GPU is cut into hardware partitions (GPU
 *   instances) named as `nvidia-smi mig -lgip` names them (`3g.71gb`).
 *
 * Everything here is pure data and pure functions; the scheduler's slot
 * arithmetic is in src/scheduler/gpu-slots.ts.
 */

export type GpuSharingMode = 'passthrough' | 'vgpu' | 'mig';

export const GPU_SHARING_MODES: readonly GpuSharingMode[] = Object.freeze(['passthrough', 'vgpu', 'mig']);

/** A whole GPU in milli-GPUs, the unit quotas count in. */
export const MILLI_PER_GPU: number = 1000;

/*
 * MIG slots. NVML places a GPU instance on the GPU's memory slices: a
 * placement is {start, size} and "creation of new GPU instance will fail if
 * there is overlap with the already occupied memory slices" (NVML API,
 * nvmlDeviceGetGpuInstancePossiblePlacements_v2). A100, H100 and H200 have 8
 * memory slices (slots 0–7) and 7 compute slices. Only one instance per GPU
 * can have the media extensions (+me, "A single 1g profile can include media
 * extensions", MIG user guide), so they are modelled as one more slot, 8.
 */
export const MIG_MEMORY_SLICES: number = 8;
export const MIG_COMPUTE_SLICES: number = 7;
export const MIG_MEDIA_SLOT: number = 8;

export interface MigProfile {
  readonly kind: 'mig';
  /** As `nvidia-smi mig -lgip` prints it, without "MIG ": `3g.71gb`, `1g.18gb+me`. */
  readonly name: string;
  /** The GPU instance profile id nvidia-smi shows in its ID column (19, 20, 15, 14, 9, 5, 0). */
  readonly nvmlId: number;
  readonly computeSlices: number;
  /** Memory slices the placement occupies (the `:size` of `nvidia-smi mig -lgipp`). */
  readonly memorySlices: number;
  /** The first memory slice of each valid placement (the `{…}` of `nvidia-smi mig -lgipp`). */
  readonly startSlots: readonly number[];
  /** Instances of this profile one GPU can hold ("Number of Instances Available"). */
  readonly maxInstances: number;
  /** Holds the GPU's one set of media extensions (slot MIG_MEDIA_SLOT). */
  readonly mediaExtensions: boolean;
  /** Frame buffer as NVML reports it, where measured on real hardware; null otherwise. */
  readonly memoryMib: number | null;
  /** Streaming multiprocessors as NVML reports them, where measured; null otherwise. */
  readonly multiprocessors: number | null;
  /** Copy engines as NVML reports them, where measured; null otherwise. */
  readonly copyEngines: number | null;
  /** Quota weight: ceil(1000 × computeSlices / 7), see milliGpuForComputeSlices. */
  readonly milliGpu: number;
}

export type VgpuProfileName = '1/8' | '1/4' | '1/2' | '1';

export interface VgpuProfile {
  readonly kind: 'vgpu';
  readonly name: VgpuProfileName;
  /** vGPUs of this size one GPU holds: its slots are 0 … perGpu − 1. */
  readonly perGpu: number;
  readonly milliGpu: number;
}

export type GpuProfile = MigProfile | VgpuProfile;

/**
 * Quota weight of a MIG profile: its compute slices over 7, in milli-GPUs,
 * rounded UP (1g → 143, 2g → 286, 3g → 429, 4g → 572, 7g → 1000). Rounding up
 * means a user can never hold more compute than the quota through rounding;
 * the cost is that seven 1g instances weigh 1001, so a quota of exactly
 * 1000 admits six of them, not seven.
 */
export function milliGpuForComputeSlices(computeSlices: number): number {
  return Math.ceil((MILLI_PER_GPU * computeSlices) / MIG_COMPUTE_SLICES);
}

function vgpu(name: VgpuProfileName, perGpu: number): VgpuProfile {
  return Object.freeze({ kind: 'vgpu', name, perGpu, milliGpu: MILLI_PER_GPU / perGpu });
}

/** Time-sliced vGPU sizes, smallest first. Valid on any model whose GPU is in vgpu mode. */
export const VGPU_PROFILES: readonly VgpuProfile[] = Object.freeze([
  vgpu('1/8', 8),
  vgpu('1/4', 4),
  vgpu('1/2', 2),
  vgpu('1', 1),
]);

interface MigRow {
  name: string;
  nvmlId: number;
  computeSlices: number;
  memorySlices: number;
  startSlots: number[];
  maxInstances: number;
  mediaExtensions?: boolean;
  memoryMib?: number;
  multiprocessors?: number;
  copyEngines?: number;
}

function migTable(rows: MigRow[]): readonly MigProfile[] {
  return Object.freeze(
    rows.map(
      (row: MigRow): MigProfile =>
        Object.freeze({
          kind: 'mig',
          name: row.name,
          nvmlId: row.nvmlId,
          computeSlices: row.computeSlices,
          memorySlices: row.memorySlices,
          startSlots: Object.freeze([...row.startSlots]),
          maxInstances: row.maxInstances,
          mediaExtensions: row.mediaExtensions ?? false,
          memoryMib: row.memoryMib ?? null,
          multiprocessors: row.multiprocessors ?? null,
          copyEngines: row.copyEngines ?? null,
          milliGpu: milliGpuForComputeSlices(row.computeSlices),
        }),
    ),
  );
}

/*
 * The placements (startSlots, memorySlices) are those `nvidia-smi mig -lgipp`
 * prints for GA100 and GH100 boards, which agree with the MIG user guide's
 * rules (a 2g starts at 0, 2 or 4; a 3g at 0 or 4; a 4g and a 7g at 0):
 *
 *   Profile ID 19 Placements: {0,1,2,3,4,5,6}:1      1g
 *   Profile ID 20 Placements: {0,1,2,3,4,5,6}:1      1g+me
 *   Profile ID 15 Placements: {0,2,4,6}:2            1g with two memory slices
 *   Profile ID 14 Placements: {0,2,4}:2              2g
 *   Profile ID  9 Placements: {0,4}:4                3g
 *   Profile ID  5 Placement : {0}:4                  4g
 *   Profile ID  0 Placement : {0}:8                  7g
 */
const ONE_G = { nvmlId: 19, computeSlices: 1, memorySlices: 1, startSlots: [0, 1, 2, 3, 4, 5, 6], maxInstances: 7 };
const ONE_G_ME = { ...ONE_G, nvmlId: 20, maxInstances: 1, mediaExtensions: true };
const ONE_G_TWO_MEMORY = { nvmlId: 15, computeSlices: 1, memorySlices: 2, startSlots: [0, 2, 4, 6], maxInstances: 4 };
const TWO_G = { nvmlId: 14, computeSlices: 2, memorySlices: 2, startSlots: [0, 2, 4], maxInstances: 3 };
const THREE_G = { nvmlId: 9, computeSlices: 3, memorySlices: 4, startSlots: [0, 4], maxInstances: 2 };
const FOUR_G = { nvmlId: 5, computeSlices: 4, memorySlices: 4, startSlots: [0], maxInstances: 1 };
const SEVEN_G = { nvmlId: 0, computeSlices: 7, memorySlices: 8, startSlots: [0], maxInstances: 1 };

/** Profile names for one memory size: [1g, 1g+me, 1g two-slice, 2g, 3g, 4g, 7g] in that order. */
function gh100LikeTable(names: [string, string, string, string, string, string, string]): readonly MigProfile[] {
  const [one, oneMe, oneTwoMemory, two, three, four, seven] = names;
  return migTable([
    { ...ONE_G, name: one },
    { ...ONE_G_ME, name: oneMe },
    { ...ONE_G_TWO_MEMORY, name: oneTwoMemory },
    { ...TWO_G, name: two },
    { ...THREE_G, name: three },
    { ...FOUR_G, name: four },
    { ...SEVEN_G, name: seven },
  ]);
}

/**
 * MIG profiles per canonical model id (see gpu-model.ts).
 *
 * - h200-141gb: ../shared/fixtures/nvidia-smi/h200-nvml-inventory.json, NVML
 *   gpu_instance_profiles of a real H200 (driver 580.159.04): slice counts,
 *   instance counts, memory, SMs and copy engines are NVML's.
 * - a100-40gb, a100-80gb, h100-80gb: NVIDIA MIG user guide, "Supported MIG
 *   Profiles" (A100-SXM4-40GB table; "for A100-SXM4-80GB the profile names
 *   change according to the memory proportion"; H100 table). The guide's
 *   table gives the A100-40GB 1g.10gb "1/8" of memory; the placement NVML
 *   reports for that profile (ID 15, `{0,2,4,6}:2`) takes two slices, which
 *   is what is used.
 * - h100-nvl-94gb: the same GH100 placements with the names an H100 NVL's
 *   `nvidia-smi mig -lgip` prints (1g.12gb … 7g.94gb).
 */
export const MIG_PROFILES_BY_MODEL: Readonly<Record<string, readonly MigProfile[]>> = Object.freeze({
  'a100-40gb': gh100LikeTable(['1g.5gb', '1g.5gb+me', '1g.10gb', '2g.10gb', '3g.20gb', '4g.20gb', '7g.40gb']),
  'a100-80gb': gh100LikeTable(['1g.10gb', '1g.10gb+me', '1g.20gb', '2g.20gb', '3g.40gb', '4g.40gb', '7g.80gb']),
  'h100-80gb': gh100LikeTable(['1g.10gb', '1g.10gb+me', '1g.20gb', '2g.20gb', '3g.40gb', '4g.40gb', '7g.80gb']),
  'h100-nvl-94gb': gh100LikeTable(['1g.12gb', '1g.12gb+me', '1g.24gb', '2g.24gb', '3g.47gb', '4g.47gb', '7g.94gb']),
  'h200-141gb': migTable([
    { ...ONE_G, name: '1g.18gb', memoryMib: 16384, multiprocessors: 16, copyEngines: 1 },
    { ...ONE_G_ME, name: '1g.18gb+me', memoryMib: 16384, multiprocessors: 16, copyEngines: 1 },
    { ...ONE_G_TWO_MEMORY, name: '1g.35gb', memoryMib: 33280, multiprocessors: 26, copyEngines: 1 },
    { ...TWO_G, name: '2g.35gb', memoryMib: 33280, multiprocessors: 32, copyEngines: 2 },
    { ...THREE_G, name: '3g.71gb', memoryMib: 71424, multiprocessors: 60, copyEngines: 3 },
    { ...FOUR_G, name: '4g.71gb', memoryMib: 71424, multiprocessors: 64, copyEngines: 4 },
    { ...SEVEN_G, name: '7g.141gb', memoryMib: 143360, multiprocessors: 132, copyEngines: 8 },
  ]),
});

const NO_PROFILES: readonly MigProfile[] = Object.freeze([]);

// Lookups run on the scheduler's hot path: maps built once from the tables.
const VGPU_BY_NAME: ReadonlyMap<string, VgpuProfile> = new Map(VGPU_PROFILES.map((p: VgpuProfile) => [p.name, p]));
const MIG_BY_MODEL: ReadonlyMap<string, ReadonlyMap<string, MigProfile>> = new Map(
  Object.entries(MIG_PROFILES_BY_MODEL).map(([model, table]) => [model, new Map(table.map((p: MigProfile) => [p.name, p]))]),
);

/** The model's MIG profiles, smallest first; empty when the model has no MIG (or we have no table for it). */
export function migProfilesFor(model: string): readonly MigProfile[] {
  return MIG_BY_MODEL.has(model) ? MIG_PROFILES_BY_MODEL[model] : NO_PROFILES;
}

export function supportsMig(model: string): boolean {
  return MIG_BY_MODEL.has(model);
}

export function findVgpuProfile(name: string): VgpuProfile | null {
  return VGPU_BY_NAME.get(name) ?? null;
}

export function findMigProfile(model: string, name: string): MigProfile | null {
  return MIG_BY_MODEL.get(model)?.get(name) ?? null;
}

/**
 * The profile `name` means on `model`: a vGPU size on any model, a MIG
 * profile only on a model whose table has it. The same MIG name can mean
 * different partitions on different models (1g.10gb is the two-slice 1g on
 * an A100 40GB and the one-slice 1g on an H100), so MIG lookups need the model.
 */
export function findGpuProfile(model: string, name: string): GpuProfile | null {
  return findVgpuProfile(name) ?? findMigProfile(model, name);
}

/** Whether `name` is a MIG profile of some model; for requests that name no model. */
export function isKnownMigProfileName(name: string): boolean {
  return Object.values(MIG_PROFILES_BY_MODEL).some((table) => table.some((profile) => profile.name === name));
}

/** Every profile name a VM on this model may ask for (for the 400 that lists them): vGPU sizes, then MIG. */
export function validProfileNames(model: string): string[] {
  return [...VGPU_PROFILES.map((profile: VgpuProfile) => profile.name), ...migProfilesFor(model).map((p) => p.name)];
}

/** Quota weight in milli-GPUs of `count` whole GPUs, or of one profile on the model. */
export function milliGpuOf(request: { gpuCount: number; gpuProfile?: string | null; gpuModel?: string | null }): number {
  if (!request.gpuProfile) return request.gpuCount * MILLI_PER_GPU;
  const vgpuProfile: VgpuProfile | null = findVgpuProfile(request.gpuProfile);
  if (vgpuProfile) return vgpuProfile.milliGpu;
  const candidates: MigProfile[] = request.gpuModel
    ? [findMigProfile(request.gpuModel, request.gpuProfile)].filter((p): p is MigProfile => p !== null)
    : Object.values(MIG_PROFILES_BY_MODEL).flatMap((table) => table.filter((p) => p.name === request.gpuProfile));
  if (candidates.length === 0) {
    throw new RangeError(`unknown GPU profile "${request.gpuProfile}"${request.gpuModel ? ` for ${request.gpuModel}` : ''}`);
  }
  // Without a model the request may land on any model with that name: charge the heaviest.
  return Math.max(...candidates.map((profile: MigProfile) => profile.milliGpu));
}

/** The smallest time-sliced vGPU size that holds `milliGpu` (1–1000): 220 → `1/4`, 810 → `1`. */
export function smallestVgpuProfileFor(milliGpu: number): VgpuProfile {
  assertShare(milliGpu);
  return VGPU_PROFILES.find((profile: VgpuProfile) => profile.milliGpu >= milliGpu) as VgpuProfile;
}

/**
 * The smallest MIG profile of the model whose compute share holds
 * `milliGpu` (fewest compute slices, then fewest memory slices; never a +me
 * profile, which a GPU has only one of), or null when the model has no MIG.
 */
export function smallestMigProfileFor(model: string, milliGpu: number): MigProfile | null {
  assertShare(milliGpu);
  let best: MigProfile | null = null;
  for (const profile of migProfilesFor(model)) {
    if (profile.mediaExtensions || profile.milliGpu < milliGpu) continue;
    if (
      best === null ||
      profile.computeSlices < best.computeSlices ||
      (profile.computeSlices === best.computeSlices && profile.memorySlices < best.memorySlices)
    ) {
      best = profile;
    }
  }
  return best;
}

function assertShare(milliGpu: number): void {
  if (!Number.isInteger(milliGpu) || milliGpu < 1 || milliGpu > MILLI_PER_GPU) {
    throw new RangeError(`a GPU share must be an integer from 1 to ${MILLI_PER_GPU} milli-GPUs, got ${milliGpu}`);
  }
}
