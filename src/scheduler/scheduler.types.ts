export type HostState = 'active' | 'draining' | 'down';

export interface SchedulerGpu {
  id: string;
  index: number;
  model: string;
  free: boolean;
}

export interface SchedulerHost {
  id: string;
  name: string;
  region: string;
  state: HostState;
  /** Totals. */
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  /** Held by live VMs. */
  usedCpuCores: number;
  usedMemoryMib: number;
  usedDiskGib: number;
  gpus: SchedulerGpu[];
}

export interface PlacementRequest {
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  gpuCount: number;
  /** Canonical model id; absent means any single model. */
  gpuModel?: string | null;
  region?: string | null;
}

export interface Placement {
  hostId: string;
  gpuIds: string[];
}

export type PolicyName = 'frag-aware-binpack' | 'first-fit' | 'random-fit' | 'best-fit';

export interface PlacementPolicy {
  readonly name: PolicyName;
  /** Pure: reads the hosts, never mutates them; `random` returns values in [0, 1). */
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest, random: () => number): Placement | null;
}
