import type { GpuSharingMode } from '../fleet/domain/gpu-profiles';
import type { WorkloadMix } from './workload-mix';

export type HostState = 'active' | 'draining' | 'down' | 'removed';

/**
 * What the scheduler needs to know about how a GPU is held. It maps 1:1 onto
 * database rows:
 *
 * - `sharingMode` is the GPU row's mode (set by an admin while the GPU is idle).
 * - `usedSlots` is one bit per claimed slot, and each claimed slot is one row
 *   (gpu_id, slot) under a unique index, so two claims can never hold the same
 *   slot, across replicas too. Slots of a `mig` GPU are its memory slices 0–7
 *   plus slot 8 for the media extensions (MIG_MEDIA_SLOT); a MIG claim holds
 *   every memory slice of its placement. Slots of a `vgpu` GPU are its vGPUs
 *   0 … perGpu − 1 of the size it holds. A `passthrough` GPU has no slots: a
 *   whole-GPU VM binds the GPU row itself, as before.
 * - `vgpuProfile` is the vGPU size a `vgpu` GPU holds now (null when it holds
 *   none). It is the one-size rule's state: a column on the GPU row set by the
 *   first claim (conditional update `WHERE vgpu_profile IS NULL OR vgpu_profile
 *   = :size`) and cleared when the last claim row goes, in the same
 *   transaction as the slot rows.
 * - `free` is true when no VM holds the GPU or any part of it: no binding and
 *   no slot rows.
 *
 * Absent fields mean a passthrough GPU with nothing claimed, so hosts built
 * the old way still schedule whole GPUs.
 */
export interface GpuOccupancy {
  model: string;
  free: boolean;
  sharingMode?: GpuSharingMode;
  usedSlots?: number;
  vgpuProfile?: string | null;
}

export interface SchedulerGpu extends GpuOccupancy {
  id: string;
  index: number;
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
  /**
   * Optional: a number that changes whenever anything else about the host
   * changes: its state, name, usage or any of its GPUs' occupancy (a row
   * version). When present, a policy may reuse
   * what it worked out about the host in an earlier decision; the in-memory
   * ledger keeps it. Hosts loaded afresh for each decision can leave it out.
   */
  version?: number;
}

/**
 * At most one of `gpuCount` (whole passthrough GPUs, > 0) and `gpuProfile`
 * (one vGPU or MIG instance, with `gpuCount` 0) asks for GPUs; neither is a
 * CPU-only VM.
 */
export interface PlacementRequest {
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  gpuCount: number;
  /** A vGPU size (`1/4`) or a MIG profile (`3g.71gb`), see gpu-profiles.ts. */
  gpuProfile?: string | null;
  /** Canonical model id; absent means any single model. */
  gpuModel?: string | null;
  region?: string | null;
}

/** One fractional claim: the profile on one GPU, holding these slots (one row each). */
export interface GpuSlotClaim {
  gpuId: string;
  profile: string;
  /** Ascending. */
  slots: number[];
}

export interface Placement {
  hostId: string;
  /** Whole GPUs, for `gpuCount` requests; empty otherwise. */
  gpuIds: string[];
  /** Fractional claims, for `gpuProfile` requests (exactly one); empty otherwise. */
  claims: GpuSlotClaim[];
}

export type PolicyName = 'frag-aware-binpack' | 'first-fit' | 'random-fit' | 'best-fit';

/** What a policy may know besides the fleet and the request. */
export interface PlacementContext {
  /** The expected workload (recent requests), for policies that measure fragmentation against it. */
  workload?: WorkloadMix;
}

export interface PlacementPolicy {
  readonly name: PolicyName;
  /** Pure: reads the hosts, never mutates them; `random` returns values in [0, 1). */
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest, random: () => number, context?: PlacementContext): Placement | null;
}
