import type { PlacementRequest } from './scheduler.types';

/**
 * The expected workload the default policy measures fragmentation against
 * (as FGD does: Weng et al., USENIX ATC '23, "fragmentation against the
 * target workload"): request shapes with their share of recent requests.
 *
 * A class is one GPU shape (whole-GPU count, vGPU size, MIG profile, or
 * none for CPU-only VMs) with the set of models it accepts; its CPU and
 * memory are the class's averages.
 */
export interface WorkloadClass {
  /** Share of the mix's requests; the classes' weights sum to 1. */
  readonly weight: number;
  readonly gpuCount: number;
  readonly gpuProfile: string | null;
  /** Models the class accepts, ascending; null accepts any model. */
  readonly models: readonly string[] | null;
  readonly cpuCores: number;
  readonly memoryMib: number;
  /**
   * The class's most common CPU and memory sizes (at most MAX_SIZES), largest
   * first, each with its share of the class: a policy that keeps room for
   * the class must keep it for its larger VMs too, not just the average one.
   */
  readonly sizes: readonly WorkloadSize[];
}

export interface WorkloadSize {
  readonly cpuCores: number;
  readonly memoryMib: number;
  /** Share of the class's requests. */
  readonly weight: number;
}

export interface WorkloadMix {
  readonly classes: readonly WorkloadClass[];
  /** How many requests the shares were counted from (for how far to trust them); 0 when unknown. */
  readonly samples: number;
}

export const EMPTY_WORKLOAD_MIX: WorkloadMix = Object.freeze({ classes: Object.freeze([]), samples: 0 });

interface ClassTally {
  count: number;
  cpuCores: number;
  memoryMib: number;
  /** Count per "cpu|memory". */
  sizes: Map<string, number>;
  gpuCount: number;
  gpuProfile: string | null;
  models: string[] | null;
}

/**
 * Counts requests into a mix. One call to `record` is one VM: its
 * alternatives (the same VM on each model it accepts) make one class that
 * accepts all their models. An app would record recent requests (from its
 * VM table); the replay records arrivals as they come, so the policy never
 * knows the future.
 */
export interface WorkloadTally {
  record(alternatives: readonly PlacementRequest[]): void;
  /**
   * The mix so far, the `maxClasses` heaviest classes re-weighted to sum to
   * 1. It is rebuilt once the requests recorded since the last build reach
   * a tenth of all recorded (at every request for the first ten), so the
   * policy's per-mix work is redone about 2.3 × log(n) times over n
   * requests, not n times.
   */
  mix(): WorkloadMix;
}

export const DEFAULT_MAX_CLASSES: number = 24;
/** Sizes kept per class (the most common ones). */
export const MAX_SIZES: number = 4;
/** The mix is rebuilt when the requests recorded since the last build reach 1/10 of all recorded. */
const REBUILD_FRACTION: number = 10;

export function createWorkloadTally(maxClasses: number = DEFAULT_MAX_CLASSES): WorkloadTally {
  const tallies: Map<string, ClassTally> = new Map<string, ClassTally>();
  let cached: WorkloadMix = EMPTY_WORKLOAD_MIX;
  let recorded: number = 0;
  let recordedAtBuild: number = 0;
  return {
    record(alternatives: readonly PlacementRequest[]): void {
      if (alternatives.length === 0) return;
      const first: PlacementRequest = alternatives[0];
      const cpuOnly: boolean = first.gpuCount === 0 && !first.gpuProfile;
      const models: string[] | null = cpuOnly || alternatives.some((req: PlacementRequest) => !req.gpuModel)
        ? null
        : [...new Set(alternatives.map((req: PlacementRequest) => req.gpuModel as string))].sort();
      const key: string = `${first.gpuCount}|${first.gpuProfile ?? ''}|${models?.join(',') ?? '*'}`;
      const tally: ClassTally = tallies.get(key) ?? {
        count: 0,
        cpuCores: 0,
        memoryMib: 0,
        sizes: new Map<string, number>(),
        gpuCount: first.gpuCount,
        gpuProfile: first.gpuProfile ?? null,
        models,
      };
      tally.count++;
      tally.cpuCores += first.cpuCores;
      tally.memoryMib += first.memoryMib;
      const size: string = `${first.cpuCores}|${first.memoryMib}`;
      tally.sizes.set(size, (tally.sizes.get(size) ?? 0) + 1);
      tallies.set(key, tally);
      recorded++;
    },
    mix(): WorkloadMix {
      if (recorded > recordedAtBuild && recorded - recordedAtBuild >= Math.max(1, recorded / REBUILD_FRACTION)) {
        cached = mixOf([...tallies.values()], maxClasses);
        recordedAtBuild = recorded;
      }
      return cached;
    },
  };
}

/** The mix of a list of VMs (each a list of alternatives), as a tally that recorded them all. */
export function workloadMixOf(vms: readonly (readonly PlacementRequest[])[], maxClasses?: number): WorkloadMix {
  const tally: WorkloadTally = createWorkloadTally(maxClasses);
  for (const alternatives of vms) tally.record(alternatives);
  return tally.mix();
}

function mixOf(tallies: ClassTally[], maxClasses: number): WorkloadMix {
  const kept: ClassTally[] = tallies.sort((a: ClassTally, b: ClassTally) => b.count - a.count).slice(0, maxClasses);
  const total: number = kept.reduce((sum: number, tally: ClassTally) => sum + tally.count, 0);
  return Object.freeze({
    samples: total,
    classes: Object.freeze(
      kept.map(
        (tally: ClassTally): WorkloadClass =>
          Object.freeze({
            weight: tally.count / total,
            gpuCount: tally.gpuCount,
            gpuProfile: tally.gpuProfile,
            models: tally.models === null ? null : Object.freeze([...tally.models]),
            cpuCores: tally.cpuCores / tally.count,
            memoryMib: tally.memoryMib / tally.count,
            sizes: sizesOf(tally),
          }),
      ),
    ),
  });
}

function sizesOf(tally: ClassTally): readonly WorkloadSize[] {
  const common: [string, number][] = [...tally.sizes.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_SIZES);
  const kept: number = common.reduce((sum: number, [, count]) => sum + count, 0);
  return Object.freeze(
    common
      .map(([key, count]): WorkloadSize => {
        const [cpuCores, memoryMib] = key.split('|').map(Number);
        return Object.freeze({ cpuCores, memoryMib, weight: count / kept });
      })
      .sort((a: WorkloadSize, b: WorkloadSize) => b.cpuCores - a.cpuCores || b.memoryMib - a.memoryMib),
  );
}
