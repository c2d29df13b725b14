import { findMigProfile, MigProfile, MILLI_PER_GPU, VGPU_PROFILES, VgpuProfile } from '../../fleet/domain/gpu-profiles';
import { freeMilliGpu, popcount, profileCapacityOn } from '../gpu-slots';
import { claimOn, compareHostsByName, fittingProfile, hasFreeResources, placementOn, selectGpuModel } from '../host-filter';
import {
  GpuSlotClaim,
  Placement,
  PlacementContext,
  PlacementPolicy,
  PlacementRequest,
  SchedulerGpu,
  SchedulerHost,
} from '../scheduler.types';
import { EMPTY_WORKLOAD_MIX, WorkloadClass, WorkloadMix } from '../workload-mix';

/*
 * Fragmentation-aware bin packing against the expected workload.
 *
 * Like FGD (Weng et al., "Beware of Fragmentation", USENIX ATC '23) it
 * judges a placement by what it does to the rest of the workload, described
 * by the mix of recent requests (PlacementContext.workload). Unlike FGD it
 * counts VMs rather than GPU capacity: a host's *yield* is the number of the
 * mix's VMs it can still be expected to take, and the policy picks the host
 * whose yield the placement lowers least. The yield of a host is
 *
 * - for its free passthrough GPUs, the expected number of whole-GPU VMs they
 *   absorb when VMs of the mix arrive until none fits (a small dynamic
 *   programme over the free GPU count). Because an 8-GPU VM takes a whole
 *   host for one VM where 1-GPU VMs would have taken eight, a whole host is
 *   worth less than its GPU count when large VMs are in the mix;
 * - for its vGPU GPUs, one VM per free slot of a size the mix asks for, and
 *   for an empty one the mix's average vGPUs per GPU;
 * - for its MIG GPUs, the instances of the mix's profiles that still fit;
 * - each counted only as far as the host's free CPU and memory can feed them
 *   at the mix's CPU and memory per GPU (vGPU, instance), plus the CPU-only
 *   VMs the CPU and memory left over take.
 *
 * Only the classes of the mix that accept the host's model count. A host's
 * score is the yield lost, plus, for GPU requests, the model pressure of the
 * GPUs taken (the share of the mix pinned to that model over the model's
 * share of the free capacity, at most one VM per GPU or vGPU taken, so VMs
 * that accept any model leave scarce models to the VMs that need them), plus
 * UNTOUCHED_HOST_VALUE scaled by the host's size when nothing is on it yet.
 * Among the hosts that fit:
 *
 *   - a host that would stop being able to take a multi-GPU size the mix
 *     holds hosts back for (scarceReservedClasses) is skipped if another fits;
 *   - a CPU-only VM goes to a host without free GPUs if one fits;
 *   - a vGPU that would open an empty GPU is skipped if a GPU holding its
 *     size has room on a model no more pressed (one size per GPU makes an
 *     opened GPU useless to the other sizes);
 *   - then the lowest score (to a hundredth of a VM), then the least free
 *     GPU capacity, CPU and memory left (best fit), then name and id.
 *
 * Without a workload in the context the request itself stands for it,
 * with 1-GPU VMs that take their host's share of CPU and memory per GPU.
 *
 * It is DEFAULT_POLICY because it places at least as many tasks as
 * first-fit, best-fit and random-fit in every filling run of every variant
 * of the Alibaba trace (bench/placement.ts checks it; docs/benchmarks.md).
 */

const VGPU_INDEX: ReadonlyMap<string, number> = new Map(VGPU_PROFILES.map((p: VgpuProfile, i: number) => [p.name, i]));

/** VGPU_INDEX for a GPU's current size, without a map lookup per GPU. */
function vgpuSizeIndex(name: string): number {
  for (let s: number = 0; s < VGPU_PROFILES.length; s++) if (VGPU_PROFILES[s].name === name) return s;
  return -1;
}
const VGPU_SIZES: number = VGPU_PROFILES.length;
const VGPU_MILLI: Float64Array = Float64Array.from(VGPU_PROFILES.map((p: VgpuProfile) => p.milliGpu));
const VGPU_PER_GPU: Int32Array = Int32Array.from(VGPU_PROFILES.map((p: VgpuProfile) => p.perGpu));
/** Free passthrough GPUs the yield table covers on one host; more count as this many. */
const MAX_WHOLE: number = 16;
const MAX_GROUPS: number = 8;
/** Classes beyond this many (the lightest) are dropped: class sets are bit masks. */
const MAX_CLASSES: number = 30;
/** Multi-GPU class sizes whose hosts the policy holds back (from the heaviest classes). */
const MAX_RESERVED: number = 16;
/**
 * At most this share of the hosts with free whole GPUs is held back for a
 * multi-GPU class that asks for more than 1/k of the whole GPUs. See
 * scarceReservedClasses.
 */
const MAX_RESERVED_HOST_SHARE: number = 0.1;
/**
 * What starting on an untouched host costs beyond its yield, in VMs, for
 * the largest candidate (smaller hosts in proportion to their size): it may
 * be the only one left that can take a VM larger than any the mix has seen.
 */
const UNTOUCHED_HOST_VALUE: number = 0.3;
/** The reserve is a safety stock: the expected count plus this many standard deviations (Poisson). */
const SAFETY_STOCK_DEVIATIONS: number = 2;
/** Score differences below this (a hundredth of a VM) are ties, left to the best-fit keys. */
const YIELD_RESOLUTION: number = 0.01;

const KIND_CPU: number = 0;
const KIND_WHOLE: number = 1;
const KIND_VGPU: number = 2;
const KIND_MIG: number = 3;

/** What a set of classes (those that fit a host) expects of a host, precomputed once per set. */
interface ClassSetTable {
  /** Expected whole-GPU VMs absorbed by w free passthrough GPUs. */
  wholeYield: Float64Array;
  /** 1 where some class asks for that vGPU size. */
  vgpuWanted: Uint8Array;
  /** Expected vGPUs an empty vGPU GPU takes: the mix's average slots per GPU for its vGPU sizes. */
  vgpuOpen: number;
  mig: { profile: string; weight: number }[];
  /** CPU and memory the classes ask for per whole GPU, per vGPU, and per MIG instance (0 without such classes). */
  cpuPerWholeGpu: number;
  memoryPerWholeGpu: number;
  cpuPerVgpu: number;
  memoryPerVgpu: number;
  cpuPerMig: number;
  memoryPerMig: number;
  cpuOnlyCpu: number;
  cpuOnlyMemory: number;
}

/** The workload's classes as flat arrays, built once per mix. */
interface PreparedMix {
  size: number;
  weight: Float64Array;
  cpu: Float64Array;
  memory: Float64Array;
  kind: Uint8Array;
  gpuCount: Int32Array;
  vgpuIndex: Int32Array;
  migProfile: (string | null)[];
  models: (readonly string[] | null)[];
  cpuOnlyMask: number;
  /** Per model: the classes (bits) that accept it, CPU-only ones included. */
  modelMask: Map<string, number>;
  tables: Map<number, ClassSetTable>;
  /** Per pool (whole, vGPU) and model: share of that pool's demand pinned to the model. */
  pinnedShare: [Map<string, number>, Map<string, number>];
  /**
   * Sizes of multi-GPU classes whose hosts are held back (scarceReservedClasses):
   * the class, the size's CPU and memory, and the share of whole-GPU requests
   * that are of the class and at least that large.
   */
  reserved: number[];
  reservedCpu: Float64Array;
  reservedMemory: Float64Array;
  reservedShare: Float64Array;
  /** Whole GPUs per whole-GPU request, on average. */
  gpusPerWholeVm: number;
  /** Whole-GPU requests the shares were counted from. */
  wholeSamples: number;
}

const preparedMixes: WeakMap<WorkloadMix, PreparedMix> = new WeakMap<WorkloadMix, PreparedMix>();

function kindOf(c: WorkloadClass): number {
  if (c.gpuProfile) return VGPU_INDEX.has(c.gpuProfile) ? KIND_VGPU : KIND_MIG;
  return c.gpuCount > 0 ? KIND_WHOLE : KIND_CPU;
}

function prepare(mix: WorkloadMix): PreparedMix {
  const cached: PreparedMix | undefined = preparedMixes.get(mix);
  if (cached) return cached;
  const classes: readonly WorkloadClass[] = [...mix.classes].sort((a, b) => b.weight - a.weight).slice(0, MAX_CLASSES);
  const prepared: PreparedMix = {
    size: classes.length,
    weight: Float64Array.from(classes.map((c: WorkloadClass) => c.weight)),
    cpu: Float64Array.from(classes.map((c: WorkloadClass) => c.cpuCores)),
    memory: Float64Array.from(classes.map((c: WorkloadClass) => c.memoryMib)),
    kind: Uint8Array.from(classes.map(kindOf)),
    gpuCount: Int32Array.from(classes.map((c: WorkloadClass) => c.gpuCount)),
    vgpuIndex: Int32Array.from(classes.map((c: WorkloadClass) => (c.gpuProfile ? (VGPU_INDEX.get(c.gpuProfile) ?? -1) : -1))),
    migProfile: classes.map((c: WorkloadClass) => (kindOf(c) === KIND_MIG ? c.gpuProfile : null)),
    models: classes.map((c: WorkloadClass) => c.models),
    cpuOnlyMask: 0,
    modelMask: new Map<string, number>(),
    tables: new Map<number, ClassSetTable>(),
    pinnedShare: [new Map<string, number>(), new Map<string, number>()],
    reserved: [],
    reservedCpu: new Float64Array(0),
    reservedMemory: new Float64Array(0),
    reservedShare: new Float64Array(0),
    gpusPerWholeVm: 0,
    wholeSamples: 0,
  };
  const poolWeight: [number, number] = [0, 0];
  classes.forEach((c: WorkloadClass, m: number) => {
    const kind: number = prepared.kind[m];
    if (kind === KIND_CPU) prepared.cpuOnlyMask |= 1 << m;
    const pool: number = kind === KIND_WHOLE ? 0 : kind === KIND_VGPU ? 1 : -1;
    if (pool < 0) return;
    poolWeight[pool] += c.weight;
    for (const model of c.models ?? []) {
      const pinned: Map<string, number> = prepared.pinnedShare[pool];
      pinned.set(model, (pinned.get(model) ?? 0) + c.weight / (c.models as readonly string[]).length);
    }
  });
  for (const pool of [0, 1]) {
    for (const [model, weight] of prepared.pinnedShare[pool]) prepared.pinnedShare[pool].set(model, weight / poolWeight[pool]);
  }
  let wholeGpus: number = 0;
  classes.forEach((c: WorkloadClass, m: number) => {
    if (prepared.kind[m] !== KIND_WHOLE) return;
    wholeGpus += c.weight * c.gpuCount;
    if (c.gpuCount >= 2 && prepared.reserved.length < MAX_RESERVED) prepared.reserved.push(m);
  });
  prepared.gpusPerWholeVm = poolWeight[0] === 0 ? 0 : wholeGpus / poolWeight[0];
  prepared.wholeSamples = mix.samples * poolWeight[0];
  prepared.reservedShare = Float64Array.from(prepared.reserved.map((m: number) => prepared.weight[m] / poolWeight[0]));
  preparedMixes.set(mix, prepared);
  return prepared;
}

let lastMaskMix: PreparedMix | null = null;
let lastMaskModel: string = '';
let lastMask: number = 0;

function modelMask(mix: PreparedMix, model: string): number {
  // Consecutive hosts mostly share a model: one remembered answer saves the map lookup.
  if (mix === lastMaskMix && model === lastMaskModel) return lastMask;
  let mask: number | undefined = mix.modelMask.get(model);
  if (mask === undefined) {
    mask = mix.cpuOnlyMask;
    for (let m: number = 0; m < mix.size; m++) {
      const models: readonly string[] | null = mix.models[m];
      if (mix.kind[m] !== KIND_CPU && (models === null || models.includes(model))) mask |= 1 << m;
    }
    mix.modelMask.set(model, mask);
  }
  lastMaskMix = mix;
  lastMaskModel = model;
  lastMask = mask;
  return mask;
}

let lastTableMix: PreparedMix | null = null;
let lastTableMask: number = -1;
let lastTable: ClassSetTable | null = null;

function tableFor(mix: PreparedMix, mask: number): ClassSetTable {
  if (mix === lastTableMix && mask === lastTableMask) return lastTable as ClassSetTable;
  let table: ClassSetTable | undefined = mix.tables.get(mask);
  if (table === undefined) {
    table = buildTable(mix, mask);
    mix.tables.set(mask, table);
  }
  lastTableMix = mix;
  lastTableMask = mask;
  lastTable = table;
  return table;
}

function buildTable(mix: PreparedMix, mask: number): ClassSetTable {
  const wholeWeight: Float64Array = new Float64Array(MAX_WHOLE + 1);
  const vgpuWeight: Float64Array = new Float64Array(VGPU_SIZES);
  const mig: { profile: string; weight: number }[] = [];
  // Per pool: [weight, GPUs (or instances), CPU, memory], summed over its classes.
  const sums: Float64Array[] = [new Float64Array(4), new Float64Array(4), new Float64Array(4), new Float64Array(4)];
  for (let m: number = 0; m < mix.size; m++) {
    if ((mask & (1 << m)) === 0) continue;
    const w: number = mix.weight[m];
    const kind: number = mix.kind[m];
    const sum: Float64Array = sums[kind];
    sum[0] += w;
    sum[1] += w * (kind === KIND_WHOLE ? mix.gpuCount[m] : 1);
    sum[2] += w * mix.cpu[m];
    sum[3] += w * mix.memory[m];
    if (kind === KIND_WHOLE && mix.gpuCount[m] <= MAX_WHOLE) wholeWeight[mix.gpuCount[m]] += w;
    else if (kind === KIND_VGPU) vgpuWeight[mix.vgpuIndex[m]] += w;
    else if (kind === KIND_MIG) mig.push({ profile: mix.migProfile[m] as string, weight: w });
  }
  // Expected VMs absorbed by w free GPUs: the next VM that fits is drawn from the mix, takes its GPUs, and so on.
  const wholeYield: Float64Array = new Float64Array(MAX_WHOLE + 1);
  for (let w: number = 1; w <= MAX_WHOLE; w++) {
    let total: number = 0;
    let value: number = 0;
    for (let k: number = 1; k <= w; k++) {
      if (wholeWeight[k] === 0) continue;
      total += wholeWeight[k];
      value += wholeWeight[k] * (1 + wholeYield[w - k]);
    }
    wholeYield[w] = total === 0 ? 0 : value / total;
  }
  let vgpuTotal: number = 0;
  let vgpuOpen: number = 0;
  const vgpuWanted: Uint8Array = new Uint8Array(VGPU_SIZES);
  for (let s: number = 0; s < VGPU_SIZES; s++) {
    if (vgpuWeight[s] === 0) continue;
    vgpuWanted[s] = 1;
    vgpuTotal += vgpuWeight[s];
    vgpuOpen += vgpuWeight[s] * VGPU_PER_GPU[s];
  }
  const per = (kind: number, field: number): number => (sums[kind][1] === 0 ? 0 : sums[kind][field] / sums[kind][1]);
  return {
    wholeYield,
    vgpuWanted,
    vgpuOpen: vgpuTotal === 0 ? 0 : vgpuOpen / vgpuTotal,
    mig,
    cpuPerWholeGpu: per(KIND_WHOLE, 2),
    memoryPerWholeGpu: per(KIND_WHOLE, 3),
    cpuPerVgpu: per(KIND_VGPU, 2),
    memoryPerVgpu: per(KIND_VGPU, 3),
    cpuPerMig: per(KIND_MIG, 2),
    memoryPerMig: per(KIND_MIG, 3),
    cpuOnlyCpu: sums[KIND_CPU][0] === 0 ? 0 : sums[KIND_CPU][2] / sums[KIND_CPU][0],
    cpuOnlyMemory: sums[KIND_CPU][0] === 0 ? 0 : sums[KIND_CPU][3] / sums[KIND_CPU][0],
  };
}

/**
 * A host's GPUs summarised per model ("group"): free passthrough GPUs,
 * empty vGPU GPUs and free vGPU slots per size. Buffers are reused from host
 * to host so scoring allocates nothing.
 */
class HostGpuState {
  groups: number = 0;
  model: string[] = new Array<string>(MAX_GROUPS).fill('');
  whole: Int32Array = new Int32Array(MAX_GROUPS);
  emptyVgpu: Int32Array = new Int32Array(MAX_GROUPS);
  /** [group * VGPU_SIZES + size]: free vGPU slots on GPUs that hold that size. */
  vgpuSlots: Int32Array = new Int32Array(MAX_GROUPS * VGPU_SIZES);
  hasMig: boolean = false;
  freeMilli: number = 0;
  overflow: boolean = false;
  /** Nothing is placed on the host yet. */
  untouched: boolean = false;

  read(host: SchedulerHost): void {
    this.groups = 0;
    this.hasMig = false;
    this.freeMilli = 0;
    this.overflow = false;
    this.untouched = host.usedCpuCores === 0 && host.usedMemoryMib === 0 && host.usedDiskGib === 0;
    const gpus: SchedulerGpu[] = host.gpus;
    let g: number = -1;
    for (let i: number = 0; i < gpus.length; i++) {
      const gpu: SchedulerGpu = gpus[i];
      if (g < 0 || gpu.model !== this.model[g]) {
        g = this.group(gpu.model);
        if (g < 0) {
          this.overflow = true;
          return;
        }
      }
      if (!gpu.free) this.untouched = false;
      const mode: string | undefined = gpu.sharingMode;
      if (mode === 'vgpu') {
        const used: number = gpu.usedSlots ?? 0;
        if (used === 0) {
          this.emptyVgpu[g]++;
          this.freeMilli += MILLI_PER_GPU;
        } else {
          const size: number = vgpuSizeIndex(gpu.vgpuProfile as string);
          const free: number = VGPU_PER_GPU[size] - popcount(used);
          this.vgpuSlots[g * VGPU_SIZES + size] += free;
          this.freeMilli += free * VGPU_MILLI[size];
        }
      } else if (mode === 'mig') {
        this.hasMig = true;
        this.freeMilli += freeMilliGpu(gpu);
      } else if (gpu.free) {
        this.whole[g]++;
        this.freeMilli += MILLI_PER_GPU;
      }
    }
  }

  indexOf(model: string): number {
    for (let g: number = 0; g < this.groups; g++) if (this.model[g] === model) return g;
    return -1;
  }

  private group(model: string): number {
    const g: number = this.indexOf(model);
    if (g >= 0) return g;
    if (this.groups === MAX_GROUPS) return -1;
    const fresh: number = this.groups++;
    this.model[fresh] = model;
    this.whole[fresh] = 0;
    this.emptyVgpu[fresh] = 0;
    this.vgpuSlots.fill(0, fresh * VGPU_SIZES, (fresh + 1) * VGPU_SIZES);
    return fresh;
  }
}

/** A MIG claim being weighed: the GPU and its slots after the claim. */
interface MigOverride {
  gpu: SchedulerGpu;
  usedSlots: number;
}

/**
 * A change to one group of a HostGpuState: the request being weighed.
 * group −1 is no change.
 */
class StateDelta {
  group: number = -1;
  whole: number = 0;
  emptyVgpu: number = 0;
  size: number = 0;
  slots: number = 0;

  clear(): void {
    this.group = -1;
    this.whole = 0;
    this.emptyVgpu = 0;
    this.size = 0;
    this.slots = 0;
  }
}

const NO_CHANGE: StateDelta = new StateDelta();

/**
 * Expected VMs the host still takes from the mix, in the given GPU state
 * (plus delta) with this much CPU and memory free. Each pool takes as many
 * GPUs (vGPUs, instances) as the CPU and memory left can feed at the mix's
 * CPU and memory per GPU; CPU-only VMs take what is left after that.
 */
function hostYield(
  mix: PreparedMix,
  host: SchedulerHost,
  state: HostGpuState,
  delta: StateDelta,
  freeCpu: number,
  freeMemory: number,
  migOverride: MigOverride | null,
): number {
  let cpu: number = freeCpu;
  let memory: number = freeMemory;
  let hostMask: number = mix.cpuOnlyMask;
  let vms: number = 0;
  for (let g: number = 0; g < state.groups; g++) {
    const groupMask: number = modelMask(mix, state.model[g]);
    hostMask |= groupMask;
    const table: ClassSetTable = tableFor(mix, groupMask);
    const changed: boolean = g === delta.group;
    const whole: number = state.whole[g] + (changed ? delta.whole : 0);
    if (whole > 0 && table.cpuPerWholeGpu + table.memoryPerWholeGpu > 0) {
      const fed: number = feedable(whole, cpu, memory, table.cpuPerWholeGpu, table.memoryPerWholeGpu);
      vms += interpolate(table.wholeYield, fed);
      cpu -= fed * table.cpuPerWholeGpu;
      memory -= fed * table.memoryPerWholeGpu;
    }
    let vgpus: number = table.vgpuOpen * (state.emptyVgpu[g] + (changed ? delta.emptyVgpu : 0));
    for (let s: number = 0; s < VGPU_SIZES; s++) {
      if (table.vgpuWanted[s] === 1) vgpus += state.vgpuSlots[g * VGPU_SIZES + s] + (changed && s === delta.size ? delta.slots : 0);
    }
    if (vgpus > 0) {
      const fed: number = feedable(vgpus, cpu, memory, table.cpuPerVgpu, table.memoryPerVgpu);
      vms += fed;
      cpu -= fed * table.cpuPerVgpu;
      memory -= fed * table.memoryPerVgpu;
    }
    if (state.hasMig && table.mig.length > 0) {
      const fed: number = feedable(migYield(host, state.model[g], table, migOverride), cpu, memory, table.cpuPerMig, table.memoryPerMig);
      vms += fed;
      cpu -= fed * table.cpuPerMig;
      memory -= fed * table.memoryPerMig;
    }
  }
  const table: ClassSetTable = tableFor(mix, hostMask);
  if (table.cpuOnlyCpu <= 0 || cpu <= 0 || memory <= 0) return vms;
  return vms + Math.min(cpu / table.cpuOnlyCpu, table.cpuOnlyMemory > 0 ? memory / table.cpuOnlyMemory : cpu);
}

/** Of `units` GPUs (or vGPUs), how many this CPU and memory can feed at so much each. */
function feedable(units: number, cpu: number, memory: number, cpuEach: number, memoryEach: number): number {
  let fed: number = units;
  if (cpuEach > 0) fed = Math.min(fed, Math.max(0, cpu) / cpuEach);
  if (memoryEach > 0) fed = Math.min(fed, Math.max(0, memory) / memoryEach);
  return fed;
}

/** The yield table at a fractional GPU count, linearly between the whole counts around it. */
function interpolate(table: Float64Array, at: number): number {
  const clamped: number = Math.min(at, MAX_WHOLE);
  const low: number = Math.floor(clamped);
  return low === clamped ? table[low] : table[low] + (clamped - low) * (table[low + 1] - table[low]);
}

/** Per MIG GPU of the model: the instances it takes if filled with one profile drawn from the mix. */
function migYield(host: SchedulerHost, model: string, table: ClassSetTable, override: MigOverride | null): number {
  let total: number = 0;
  let weight: number = 0;
  for (const { weight: w } of table.mig) weight += w;
  for (const gpu of host.gpus) {
    if (gpu.sharingMode !== 'mig' || gpu.model !== model) continue;
    const occupancy: SchedulerGpu = override !== null && override.gpu === gpu ? { ...gpu, usedSlots: override.usedSlots } : gpu;
    for (const { profile: name, weight: w } of table.mig) {
      const profile: MigProfile | null = findMigProfile(model, name);
      if (profile !== null) total += (w / weight) * profileCapacityOn(occupancy, profile);
    }
  }
  return total;
}

/** The GPU state of the host being scored: a memo's own, or the scratch one for hosts without a version. */
let before: HostGpuState = new HostGpuState();
const scratch: HostGpuState = before;

/** What a host's state was worth under a mix, kept while the host's version stays the same. */
interface HostMemo {
  host: SchedulerHost;
  version: number;
  /** Identifies the host's state (shape, usage, GPU summary): hosts with equal keys score alike. */
  key: number;
  /** keyEpoch when `key` was issued. */
  epoch: number;
  state: HostGpuState;
  mix: PreparedMix | null;
  yieldBefore: number;
  ableBefore: number;
}

const memos: WeakMap<SchedulerHost, HostMemo> = new WeakMap<SchedulerHost, HostMemo>();

/** Everything a host's score depends on; MIG hosts are never keyed alike (their slot layouts differ). */
function stateKey(host: SchedulerHost, state: HostGpuState): string {
  if (state.hasMig || state.overflow) return `#${host.id}`;
  let key: string = `${host.state}|${host.region}|${host.cpuCores}|${host.memoryMib}|${host.diskGib}|${host.usedCpuCores}|${host.usedMemoryMib}|${host.usedDiskGib}|${state.untouched ? 1 : 0}`;
  for (let g: number = 0; g < state.groups; g++) {
    key += `|${state.model[g]}:${state.whole[g]}:${state.emptyVgpu[g]}`;
    for (let s: number = 0; s < VGPU_SIZES; s++) key += `:${state.vgpuSlots[g * VGPU_SIZES + s]}`;
  }
  return key;
}

/** State keys as small integers, so a decision can group hosts with an array instead of a map. */
const keyIds: Map<string, number> = new Map<string, number>();
/** Past this many keys the ids start over (a long-running process sees new states forever). */
const MAX_KEY_IDS: number = 1 << 16;
let keyEpoch: number = 0;

function keyId(key: string): number {
  let id: number | undefined = keyIds.get(key);
  if (id === undefined) {
    if (keyIds.size === MAX_KEY_IDS) {
      keyIds.clear();
      keyEpoch++;
    }
    id = keyIds.size;
    keyIds.set(key, id);
  }
  return id;
}

/** Memos of the hosts array HostGroups last grouped, by position: a decision over the same array skips the WeakMap. */
let memoByPosition: (HostMemo | undefined)[] = [];

/**
 * Per position of the hosts array HostGroups describes, copies of what the
 * filters read (totals, usage, state) and of the name, for hosts with a
 * version. A position is current while it holds the same host at the same
 * version; HostGroups.sync refreshes the rest.
 */
class HostColumns {
  host: (SchedulerHost | undefined)[] = [];
  name: string[] = [];
  version: Float64Array = new Float64Array(0);
  cpu: Float64Array = new Float64Array(0);
  usedCpu: Float64Array = new Float64Array(0);
  memory: Float64Array = new Float64Array(0);
  usedMemory: Float64Array = new Float64Array(0);
  disk: Float64Array = new Float64Array(0);
  usedDisk: Float64Array = new Float64Array(0);
  hasGpus: Uint8Array = new Uint8Array(0);
  active: Uint8Array = new Uint8Array(0);
  /** Rank of the host's name (then id) among the array's, worked out when first needed; empty until then. */
  private nameRank: Int32Array = new Int32Array(0);
  private hosts: readonly SchedulerHost[] = [];

  reset(hosts: readonly SchedulerHost[]): void {
    const count: number = hosts.length;
    this.hosts = hosts;
    this.nameRank = new Int32Array(0);
    this.host = new Array<SchedulerHost | undefined>(count);
    this.name = new Array<string>(count);
    this.version = new Float64Array(count).fill(Number.NaN);
    this.cpu = new Float64Array(count);
    this.usedCpu = new Float64Array(count);
    this.memory = new Float64Array(count);
    this.usedMemory = new Float64Array(count);
    this.disk = new Float64Array(count);
    this.usedDisk = new Float64Array(count);
    this.hasGpus = new Uint8Array(count);
    this.active = new Uint8Array(count);
  }

  /** Of the positions, the one whose host comes first by name (then id), as compareHostsByName orders them. */
  firstByName(positions: readonly number[]): number {
    if (positions.length === 1) return positions[0];
    if (this.nameRank.length === 0) {
      const order: number[] = this.hosts.map((_: SchedulerHost, i: number) => i);
      order.sort((x: number, y: number) => compareHostsByName(this.hosts[x], this.hosts[y]));
      this.nameRank = new Int32Array(order.length);
      order.forEach((position: number, rank: number) => (this.nameRank[position] = rank));
    }
    let first: number = positions[0];
    for (let k: number = 1; k < positions.length; k++) if (this.nameRank[positions[k]] < this.nameRank[first]) first = positions[k];
    return first;
  }

  isCurrent(host: SchedulerHost, position: number): boolean {
    return host.version !== undefined && host.version === this.version[position] && this.host[position] === host;
  }

  copy(host: SchedulerHost, position: number): void {
    const previous: SchedulerHost | undefined = this.host[position];
    if (previous !== undefined && (previous !== host || this.name[position] !== host.name)) this.nameRank = new Int32Array(0);
    this.host[position] = host;
    this.name[position] = host.name;
    this.version[position] = host.version ?? Number.NaN;
    this.cpu[position] = host.cpuCores;
    this.usedCpu[position] = host.usedCpuCores;
    this.memory[position] = host.memoryMib;
    this.usedMemory[position] = host.usedMemoryMib;
    this.disk[position] = host.diskGib;
    this.usedDisk[position] = host.usedDiskGib;
    this.hasGpus[position] = host.gpus.length > 0 ? 1 : 0;
    this.active[position] = host.state === 'active' ? 1 : 0;
  }

  /** hasFreeResources on the copies (but the region, which the caller tests). */
  fits(position: number, req: PlacementRequest): boolean {
    return (
      this.active[position] === 1 &&
      this.usedCpu[position] + req.cpuCores <= this.cpu[position] &&
      this.usedMemory[position] + req.memoryMib <= this.memory[position] &&
      this.usedDisk[position] + req.diskGib <= this.disk[position]
    );
  }
}

const columns: HostColumns = new HostColumns();

/** The memo of a host with a version, its GPU state read again if the version changed; also puts it at its position. */
function readHost(host: SchedulerHost, position: number): HostMemo {
  let memo: HostMemo | undefined = memoByPosition[position];
  if (memo === undefined || memo.host !== host) memo = memos.get(host);
  if (memo === undefined) {
    memo = { host, version: Number.NaN, key: 0, epoch: keyEpoch, state: new HostGpuState(), mix: null, yieldBefore: 0, ableBefore: 0 };
    memos.set(host, memo);
  }
  // Key ids issued before they last started over mean nothing now.
  if (memo.epoch !== keyEpoch) memo.version = Number.NaN;
  memoByPosition[position] = memo;
  if (memo.version !== host.version) {
    memo.state.read(host);
    memo.version = host.version as number;
    memo.key = keyId(stateKey(host, memo.state));
    memo.epoch = keyEpoch;
    memo.mix = null;
  }
  return memo;
}

/**
 * The positions of the hosts with a version, grouped by state key and kept
 * from decision to decision: only hosts whose version changed move.
 */
class HostGroups {
  /** Per state key id, the positions of the hosts in that state. */
  members: Map<number, number[]> = new Map<number, number[]>();
  private keyOf: Int32Array = new Int32Array(0);
  /** Where the position sits in its key's member list. */
  private slot: Int32Array = new Int32Array(0);
  /** The hosts array the groups, the columns and memoByPosition describe; null until one with a version is seen. */
  private hosts: readonly SchedulerHost[] | null = null;

  /**
   * Brings the groups and the columns up to date with the hosts; returns how
   * many hosts have no version. An array without versions (hosts loaded
   * afresh for each decision) allocates nothing here.
   */
  sync(hosts: readonly SchedulerHost[]): number {
    // Another array: forget the last one's groups (and let its hosts go) until this one shows a version.
    if (this.hosts !== null && this.hosts !== hosts) this.start(null);
    const epoch: number = keyEpoch;
    let unkeyed: number = 0;
    for (let position: number = 0; position < hosts.length; position++) {
      const host: SchedulerHost = hosts[position];
      if (host.version === undefined) {
        if (this.hosts === hosts) this.leave(position);
        unkeyed++;
        continue;
      }
      if (this.hosts !== hosts) this.start(hosts);
      if (!columns.isCurrent(host, position)) {
        columns.copy(host, position);
        this.join(position, readHost(host, position).key);
      }
    }
    if (keyEpoch === epoch) return unkeyed;
    // The key ids started over part-way: group every host again under the new ids.
    this.start(hosts);
    return this.sync(hosts);
  }

  private start(hosts: readonly SchedulerHost[] | null): void {
    const count: number = hosts?.length ?? 0;
    this.hosts = hosts;
    this.members = new Map<number, number[]>();
    this.keyOf = new Int32Array(count).fill(-1);
    this.slot = new Int32Array(count);
    columns.reset(hosts ?? []);
    memoByPosition = new Array<HostMemo | undefined>(count);
  }

  private join(position: number, key: number): void {
    if (this.keyOf[position] === key) return;
    this.leave(position);
    let list: number[] | undefined = this.members.get(key);
    if (list === undefined) this.members.set(key, (list = []));
    this.slot[position] = list.length;
    list.push(position);
    this.keyOf[position] = key;
  }

  private leave(position: number): void {
    const key: number = this.keyOf[position];
    if (key < 0) return;
    const list: number[] = this.members.get(key) as number[];
    const last: number = list.pop() as number;
    if (last !== position) {
      list[this.slot[position]] = last;
      this.slot[last] = this.slot[position];
    }
    if (list.length === 0) this.members.delete(key);
    this.keyOf[position] = -1;
  }
}

const groups: HostGroups = new HostGroups();
const delta: StateDelta = new StateDelta();

/** How the request lands on a host, as placementOn(host, req, 'best-fit') would place it. */
interface Landing {
  /** The group of the GPUs taken; −1 for CPU-only requests. */
  group: number;
  /** A vGPU request that must open an empty GPU for its size. */
  opens: boolean;
  /** Free GPU capacity taken, in milli-GPUs. */
  takenMilli: number;
  migOverride: MigOverride | null;
}

/** Sets `delta` (and `landing`) to the request's effect on `before`, or returns false when it does not fit. */
function land(host: SchedulerHost, req: PlacementRequest, landing: Landing): boolean {
  delta.clear();
  landing.group = -1;
  landing.opens = false;
  landing.takenMilli = 0;
  landing.migOverride = null;
  if (req.gpuProfile) {
    const size: number | undefined = VGPU_INDEX.get(req.gpuProfile);
    if (size === undefined) return landMig(host, req, landing);
    const gpu: SchedulerGpu | null = vgpuChoice(host, req, size);
    if (gpu === null) return false;
    const g: number = before.indexOf(gpu.model);
    delta.group = g;
    delta.size = size;
    if ((gpu.usedSlots ?? 0) === 0) {
      landing.opens = true;
      delta.emptyVgpu = -1;
      delta.slots = VGPU_PER_GPU[size] - 1;
    } else {
      delta.slots = -1;
    }
    landing.group = g;
    landing.takenMilli = VGPU_MILLI[size];
    return true;
  }
  if (req.gpuCount === 0) return true;
  let g: number;
  if (before.groups === 1) {
    if ((req.gpuModel && before.model[0] !== req.gpuModel) || before.whole[0] < req.gpuCount) return false;
    g = 0;
  } else {
    const model: string | null = selectGpuModel(host, req.gpuCount, req.gpuModel);
    if (model === null) return false;
    g = before.indexOf(model);
  }
  delta.group = g;
  delta.whole = -req.gpuCount;
  landing.group = g;
  landing.takenMilli = req.gpuCount * MILLI_PER_GPU;
  return true;
}

function landMig(host: SchedulerHost, req: PlacementRequest, landing: Landing): boolean {
  const claim: GpuSlotClaim | null = claimOn(host, req, 'best-fit');
  if (claim === null) return false;
  const gpu: SchedulerGpu = host.gpus.find((candidate: SchedulerGpu) => candidate.id === claim.gpuId) as SchedulerGpu;
  let mask: number = gpu.usedSlots ?? 0;
  for (const slot of claim.slots) mask |= 1 << slot;
  landing.migOverride = { gpu, usedSlots: mask };
  landing.group = before.indexOf(gpu.model);
  landing.takenMilli = freeMilliGpu(gpu) - freeMilliGpu({ ...gpu, usedSlots: mask });
  return true;
}

/** The GPU claimOn('best-fit') takes for a vGPU size: fewest free slots, then lowest index. */
function vgpuChoice(host: SchedulerHost, req: PlacementRequest, size: number): SchedulerGpu | null {
  let chosen: SchedulerGpu | null = null;
  let chosenRoom: number = Number.POSITIVE_INFINITY;
  for (const gpu of host.gpus) {
    if (gpu.sharingMode !== 'vgpu' || fittingProfile(gpu, req) === null) continue;
    const room: number = VGPU_PER_GPU[size] - popcount(gpu.usedSlots ?? 0);
    if (room < chosenRoom || (room === chosenRoom && chosen !== null && gpu.index < chosen.index)) {
      chosen = gpu;
      chosenRoom = room;
    }
  }
  return chosen;
}

/** Per-decision buffers, grown as needed: one row per candidate host. */
const sharedLanding: Landing = { group: -1, opens: false, takenMilli: 0, migOverride: null };
/** Free capacity of the request's pool per model, over the candidates, for model pressure. */
const supplyModels: string[] = [];
let supplyFree: Float64Array = new Float64Array(8);

function supplyIndex(model: string): number {
  let at: number = supplyModels.indexOf(model);
  if (at < 0) {
    at = supplyModels.push(model) - 1;
    if (at >= supplyFree.length) {
      const grown: Float64Array = new Float64Array(supplyFree.length * 2);
      grown.set(supplyFree);
      supplyFree = grown;
    }
    supplyFree[at] = 0;
  }
  return at;
}

let candidates: SchedulerHost[] = [];
let candidateCount: number = 0;
let opens: Uint8Array = new Uint8Array(0);
let lost: Float64Array = new Float64Array(0);
let freeAfter: Float64Array = new Float64Array(0);
let pressure: Float64Array = new Float64Array(0);
let wholeFree: Float64Array = new Float64Array(0);
let poolFree: Float64Array = new Float64Array(0);
let untouched: Uint8Array = new Uint8Array(0);
/** How many hosts (with the same state key) candidate i stands for. */
let standsFor: Int32Array = new Int32Array(0);
let ableBefore: Int32Array = new Int32Array(0);
let ableAfter: Int32Array = new Int32Array(0);
const ableCount: Int32Array = new Int32Array(MAX_RESERVED);
let landedModel: (string | null)[] = [];

function ensureCapacity(count: number): void {
  if (lost.length >= count) return;
  const size: number = Math.max(count, lost.length * 2, 64);
  candidates = new Array<SchedulerHost>(size);
  landedModel = new Array<string | null>(size).fill(null);
  opens = new Uint8Array(size);
  lost = new Float64Array(size);
  freeAfter = new Float64Array(size);
  pressure = new Float64Array(size);
  wholeFree = new Float64Array(size);
  poolFree = new Float64Array(size);
  untouched = new Uint8Array(size);
  standsFor = new Int32Array(size);
  ableBefore = new Int32Array(size);
  ableAfter = new Int32Array(size);
}

/**
 * The workload for callers that pass none: the request itself, and as many
 * 1-GPU VMs that take their GPU host's share of CPU and memory per GPU (the
 * fleet's average), so GPUs keep their value for GPU VMs without history.
 */
function priorMix(hosts: readonly SchedulerHost[], req: PlacementRequest): WorkloadMix {
  let gpus: number = 0;
  let cpu: number = 0;
  let memory: number = 0;
  for (const host of hosts) {
    if (host.gpus.length === 0) continue;
    gpus += host.gpus.length;
    cpu += host.cpuCores;
    memory += host.memoryMib;
  }
  const requestClass: WorkloadClass = {
    weight: gpus === 0 ? 1 : 0.5,
    gpuCount: req.gpuCount,
    gpuProfile: req.gpuProfile ?? null,
    models: req.gpuModel ? [req.gpuModel] : null,
    cpuCores: req.cpuCores,
    memoryMib: req.memoryMib,
    sizes: [{ cpuCores: req.cpuCores, memoryMib: req.memoryMib, weight: 1 }],
  };
  if (gpus === 0) return { samples: 1, classes: [requestClass] };
  const share: WorkloadClass = {
    weight: 0.5,
    gpuCount: 1,
    gpuProfile: null,
    models: null,
    cpuCores: cpu / gpus,
    memoryMib: memory / gpus,
    sizes: [{ cpuCores: cpu / gpus, memoryMib: memory / gpus, weight: 1 }],
  };
  return { samples: 2, classes: [requestClass, share] };
}

function choose(hosts: readonly SchedulerHost[], req: PlacementRequest, workload: WorkloadMix): Placement | null {
  const mix: PreparedMix = prepare(workload.classes.length > 0 ? workload : priorMix(hosts, req));
  const wantsGpu: boolean = req.gpuCount > 0 || Boolean(req.gpuProfile);
  const pool: number = req.gpuProfile && VGPU_INDEX.has(req.gpuProfile) ? 1 : 0;
  const landing: Landing = sharedLanding;
  ensureCapacity(hosts.length);
  candidateCount = 0;
  supplyModels.length = 0;
  // Model pressure only matters when part of the request's pool is pinned to models.
  const pressured: boolean = wantsGpu && mix.pinnedShare[pool].size > 0;
  let freeTotal: number = 0;
  let freeWhole: number = 0;
  let wholeHosts: number = 0;
  ableCount.fill(0);
  const unkeyed: number = groups.sync(hosts);
  // Hosts in one state fit alike and score alike, and every key but the name ties between them: a group is
  // scored once, through any of its hosts, and its candidate is its first host by name.
  for (const members of groups.members.values()) {
    const position: number = members[0];
    const host: SchedulerHost = hosts[position];
    if (req.region && host.region !== req.region) continue;
    if (!columns.fits(position, req) || (wantsGpu && columns.hasGpus[position] === 0)) continue;
    const memo: HostMemo = memoByPosition[position] as HostMemo;
    before = memo.state;
    if (before.overflow || !land(host, req, landing)) continue;
    const i: number = candidateCount++;
    candidates[i] = hosts[columns.firstByName(members)];
    standsFor[i] = members.length;
    scoreCandidate(mix, host, memo, req, landing, i, pool);
  }
  // Hosts without a version are read afresh, each its own candidate.
  for (let position: number = 0; unkeyed > 0 && position < hosts.length; position++) {
    const host: SchedulerHost = hosts[position];
    if (host.version !== undefined || !hasFreeResources(host, req) || (wantsGpu && host.gpus.length === 0)) continue;
    scratch.read(host);
    before = scratch;
    if (before.overflow || !land(host, req, landing)) continue;
    const i: number = candidateCount++;
    candidates[i] = host;
    standsFor[i] = 1;
    scoreCandidate(mix, host, null, req, landing, i, pool);
  }
  if (candidateCount === 0) return null;
  // Sums over every host that fits, a candidate counting for the hosts it stands for.
  for (let i: number = 0; i < candidateCount; i++) {
    const count: number = standsFor[i];
    if (mix.reserved.length > 0) {
      for (let r: number = 0; r < mix.reserved.length; r++) if ((ableBefore[i] & (1 << r)) !== 0) ableCount[r] += count;
      freeWhole += count * wholeFree[i];
      if (wholeFree[i] > 0) wholeHosts += count;
    }
    const model: string | null = landedModel[i];
    if (pressured && model !== null) {
      supplyFree[supplyIndex(model)] += count * poolFree[i];
      freeTotal += count * poolFree[i];
    }
  }
  const scarce: number = scarceReservedClasses(mix, freeWhole, wholeHosts);
  let anyKeeps: boolean = false;
  for (let i: number = 0; i < candidateCount && scarce !== 0; i++) {
    anyKeeps ||= (ableBefore[i] & ~ableAfter[i] & scarce) === 0;
  }
  // Model pressure per candidate: VMs pinned to the model it would take from, at most one per GPU (or vGPU) taken.
  const units: number = req.gpuProfile ? 1 : req.gpuCount;
  for (let i: number = 0; i < candidateCount; i++) {
    const model: string | null = landedModel[i];
    let cost: number = 0;
    if (pressured && model !== null && freeTotal > 0) {
      const pinned: number = mix.pinnedShare[pool].get(model) ?? 0;
      const supply: number = supplyFree[supplyModels.indexOf(model)] / freeTotal;
      if (pinned > 0) cost = units * Math.min(1, pinned / supply);
    }
    pressure[i] = Math.round(cost / YIELD_RESOLUTION) * YIELD_RESOLUTION;
  }
  // A vGPU joins a GPU that holds its size rather than open one, among the least pressed models.
  const vgpu: boolean = pool === 1 && Boolean(req.gpuProfile);
  let joinPressure: number = Number.POSITIVE_INFINITY;
  for (let i: number = 0; vgpu && i < candidateCount; i++) {
    if (opens[i] === 0) joinPressure = Math.min(joinPressure, pressure[i]);
  }
  let largestCpu: number = 0;
  let largestMemory: number = 0;
  for (let i: number = 0; i < candidateCount; i++) {
    const host: SchedulerHost = candidates[i];
    largestCpu = Math.max(largestCpu, host.cpuCores);
    largestMemory = Math.max(largestMemory, host.memoryMib);
  }
  // A CPU-only VM goes to a host without free GPUs when one fits: GPU capacity is dearer than CPU.
  let gpuFreeHostsOnly: boolean = !wantsGpu;
  for (let i: number = 0; gpuFreeHostsOnly && i < candidateCount; i++) if (freeAfter[i] === 0) gpuFreeHostsOnly = false;
  const avoidGpuHosts: boolean = !wantsGpu && !gpuFreeHostsOnly;
  let best: number = -1;
  let bestScore: number = 0;
  for (let i: number = 0; i < candidateCount; i++) {
    if (avoidGpuHosts && freeAfter[i] > 0) continue;
    if (scarce !== 0 && anyKeeps && (ableBefore[i] & ~ableAfter[i] & scarce) !== 0) continue;
    if (vgpu && opens[i] === 1 && pressure[i] >= joinPressure) continue;
    const start: number = untouched[i] === 1 ? UNTOUCHED_HOST_VALUE * hostSize(candidates[i], largestCpu, largestMemory) : 0;
    const score: number = Math.round((lost[i] + pressure[i] + start) / YIELD_RESOLUTION) * YIELD_RESOLUTION;
    if (best < 0 || isBetter(score, i, bestScore, best)) {
      best = i;
      bestScore = score;
    }
  }
  const chosen: SchedulerHost = candidates[best];
  // Do not keep the caller's hosts alive between decisions.
  candidates.fill(undefined as unknown as SchedulerHost, 0, candidateCount);
  return placementOn(chosen, req, 'best-fit');
}

/** Bit r: the host can take one VM of reserved class r (its GPUs on one model, its CPU and memory). */
function reservedAble(mix: PreparedMix, state: HostGpuState, change: StateDelta, freeCpu: number, freeMemory: number): number {
  let able: number = 0;
  for (let r: number = 0; r < mix.reserved.length; r++) {
    const m: number = mix.reserved[r];
    if (mix.reservedCpu[r] > freeCpu || mix.reservedMemory[r] > freeMemory) continue;
    for (let g: number = 0; g < state.groups; g++) {
      const whole: number = state.whole[g] + (g === change.group ? change.whole : 0);
      if (whole >= mix.gpuCount[m] && (modelMask(mix, state.model[g]) & (1 << m)) !== 0) {
        able |= 1 << r;
        break;
      }
    }
  }
  return able;
}

/**
 * The reserved classes (bits) whose hosts are scarce: no more of them than
 * the class's share of the VMs the free whole GPUs can still take (its fair
 * share if the fleet fills), and at most MAX_RESERVED_HOST_SHARE of the
 * hosts with free whole GPUs. While a class is scarce, the policy does not
 * take a host that could hold one of its VMs away from it unless every host
 * that fits would. Past the cap, multi-GPU VMs are left to take their
 * chances: counted in VMs, a host kept whole for one 8-GPU VM would have
 * taken eight 1-GPU VMs.
 */
function scarceReservedClasses(mix: PreparedMix, freeWhole: number, wholeHosts: number): number {
  if (mix.reserved.length === 0 || mix.gpusPerWholeVm === 0) return 0;
  const wholeVms: number = freeWhole / mix.gpusPerWholeVm;
  const cap: number = Math.ceil(MAX_RESERVED_HOST_SHARE * wholeHosts);
  let scarce: number = 0;
  for (let r: number = 0; r < mix.reserved.length; r++) {
    const gpus: number = mix.gpuCount[mix.reserved[r]];
    const expected: number = upperShare(mix.reservedShare[r], mix.wholeSamples) * wholeVms;
    const stock: number = Math.ceil(expected + SAFETY_STOCK_DEVIATIONS * Math.sqrt(expected));
    // VMs this large (or larger) asking for more than 1/k of the whole GPUs are held back for up to the cap only.
    const gpuShare: number = (mix.reservedShare[r] * gpus) / mix.gpusPerWholeVm;
    if (ableCount[r] <= (gpuShare * gpus <= 1 ? stock : Math.min(stock, cap))) scarce |= 1 << r;
  }
  return scarce;
}

/**
 * An upper bound (about 97.5%) on a class's true share, given the share
 * seen in `samples` requests: few samples must not talk the reserve down.
 */
function upperShare(share: number, samples: number): number {
  if (samples <= 0) return share;
  return Math.min(1, share + SAFETY_STOCK_DEVIATIONS * Math.sqrt((share * (1 - share)) / samples) + 1 / samples);
}

/** The host's size relative to the largest candidate, 0–1: the geometric mean of its CPU and memory shares. */
function hostSize(host: SchedulerHost, largestCpu: number, largestMemory: number): number {
  return Math.sqrt((largestCpu > 0 ? host.cpuCores / largestCpu : 1) * (largestMemory > 0 ? host.memoryMib / largestMemory : 1));
}

/** Scores `host` (whose state is in `before`, landing in `delta`) as candidate i. */
function scoreCandidate(
  mix: PreparedMix,
  host: SchedulerHost,
  memo: HostMemo | null,
  req: PlacementRequest,
  landing: Landing,
  i: number,
  pool: number,
): void {
  const freeCpu: number = host.cpuCores - host.usedCpuCores;
  const freeMemory: number = host.memoryMib - host.usedMemoryMib;
  let yieldBefore: number;
  let able: number;
  if (memo !== null && memo.mix === mix) {
    yieldBefore = memo.yieldBefore;
    able = memo.ableBefore;
  } else {
    yieldBefore = hostYield(mix, host, before, NO_CHANGE, freeCpu, freeMemory, null);
    able = mix.reserved.length > 0 ? reservedAble(mix, before, NO_CHANGE, freeCpu, freeMemory) : 0;
    if (memo !== null) {
      memo.mix = mix;
      memo.yieldBefore = yieldBefore;
      memo.ableBefore = able;
    }
  }
  landedModel[i] = landing.group >= 0 ? before.model[landing.group] : null;
  opens[i] = landing.opens ? 1 : 0;
  lost[i] = yieldBefore - hostYield(mix, host, before, delta, freeCpu - req.cpuCores, freeMemory - req.memoryMib, landing.migOverride);
  freeAfter[i] = before.freeMilli - landing.takenMilli;
  untouched[i] = before.untouched ? 1 : 0;
  ableBefore[i] = able;
  // Only a host that can take some reserved size now can stop being able to.
  ableAfter[i] = able === 0 ? 0 : reservedAble(mix, before, delta, freeCpu - req.cpuCores, freeMemory - req.memoryMib);
  let whole: number = 0;
  for (let g: number = 0; g < before.groups; g++) whole += before.whole[g];
  wholeFree[i] = whole;
  poolFree[i] = landing.group < 0 ? 0 : pool === 1 ? poolFreeVgpu(landing.group) : before.whole[landing.group] * MILLI_PER_GPU;
}

function poolFreeVgpu(g: number): number {
  let free: number = before.emptyVgpu[g] * MILLI_PER_GPU;
  for (let s: number = 0; s < VGPU_SIZES; s++) free += before.vgpuSlots[g * VGPU_SIZES + s] * VGPU_MILLI[s];
  return free;
}

function isBetter(score: number, i: number, bestScore: number, best: number): boolean {
  if (score !== bestScore) return score < bestScore;
  if (freeAfter[i] !== freeAfter[best]) return freeAfter[i] < freeAfter[best];
  const a: SchedulerHost = candidates[i];
  const b: SchedulerHost = candidates[best];
  const cpuA: number = a.cpuCores - a.usedCpuCores;
  const cpuB: number = b.cpuCores - b.usedCpuCores;
  if (cpuA !== cpuB) return cpuA < cpuB;
  const memoryA: number = a.memoryMib - a.usedMemoryMib;
  const memoryB: number = b.memoryMib - b.usedMemoryMib;
  if (memoryA !== memoryB) return memoryA < memoryB;
  return compareHostsByName(a, b) < 0;
}

export const fragAwareBinpackPolicy: PlacementPolicy = {
  name: 'frag-aware-binpack',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest, _random: () => number, context?: PlacementContext): Placement | null {
    return choose(hosts, req, context?.workload ?? EMPTY_WORKLOAD_MIX);
  },
};
