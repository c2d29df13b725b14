import { countFreeGpus, hasFreeResources, selectGpuModel } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';
import { chooseLowestScore } from './lowest-score-choice';

/*
 * Fragmentation-aware bin packing. Among the hosts that fit, pick the lowest
 * score, compared key by key (ties: host name, then id):
 *
 * GPU requests (gpuCount ≥ 1)
 *   1. newly stranded GPUs: how many more of the host's free GPUs can no
 *      longer be fed after this placement (see strandedGpus) — a VM that
 *      takes most of a host's CPU or memory but few of its GPUs makes the
 *      rest unsellable;
 *   2. free GPUs of the chosen model left on the host (best fit on GPUs: a
 *      1-GPU VM goes where one GPU is left before it breaks into a whole
 *      8-GPU host);
 *   3. whether the host is still whole (all GPUs free): among equal fits,
 *      cut into an already used host and keep whole hosts for large VMs;
 *   4. free CPU cores left, then 5. free memory left (best fit).
 *
 * CPU-only requests (gpuCount 0)
 *   1. whether the host has any free GPU: hosts without GPUs, or whose GPUs
 *      are all taken, come first, so CPU-only VMs do not eat the CPU and
 *      memory that a GPU host's free GPUs need;
 *   2. newly stranded GPUs, as above;
 *   3. (unused) 4. free CPU cores left, 5. free memory left.
 *
 * It is DEFAULT_POLICY because on the Alibaba replays (bench/placement.ts,
 * docs/benchmarks.md) it placed the most tasks of all policies and was the
 * only one to allocate every GPU before refusing a multi-GPU VM.
 */

/**
 * A free GPU counts as fed while the host still has this fraction of its
 * per-GPU share of CPU and memory (total / GPU count) for it. Chosen on the
 * Alibaba replay, where bench/placement.ts sweeps it: near 0 stranding is
 * never seen, at 1.0 a VM is blamed for "stranding" GPUs that smaller VMs
 * could still use and whole hosts get broken to avoid it.
 */
export const FED_GPU_SHARE: number = 0.5;

/** The policy with another fed share, for tuning; the registered policy uses FED_GPU_SHARE. */
export function createFragAwareBinpackPolicy(fedGpuShare: number = FED_GPU_SHARE): PlacementPolicy {
  if (!(fedGpuShare > 0 && fedGpuShare <= 1)) {
    throw new RangeError(`fedGpuShare must be in (0, 1], got ${fedGpuShare}`);
  }
  const score = (host: SchedulerHost, req: PlacementRequest, out: Float64Array): boolean =>
    scoreFragAware(host, req, out, fedGpuShare);
  return {
    name: 'frag-aware-binpack',
    choose(hosts: readonly SchedulerHost[], req: PlacementRequest): Placement | null {
      return chooseLowestScore(hosts, req, 5, score);
    },
  };
}

export const fragAwareBinpackPolicy: PlacementPolicy = createFragAwareBinpackPolicy();

function scoreFragAware(host: SchedulerHost, req: PlacementRequest, out: Float64Array, fedGpuShare: number): boolean {
  if (!hasFreeResources(host, req)) return false;
  // One pass over the GPUs; most hosts have a single model, which spares selectGpuModel.
  let freeGpus: number = 0;
  let firstModel: string | null = null;
  let mixed: boolean = false;
  for (const gpu of host.gpus) {
    if (!gpu.free) continue;
    freeGpus++;
    if (firstModel === null) firstModel = gpu.model;
    else if (gpu.model !== firstModel) mixed = true;
  }
  if (freeGpus < req.gpuCount) return false;
  let modelFree: number = freeGpus;
  if (req.gpuCount > 0) {
    if (mixed) {
      const model: string | null = selectGpuModel(host, req.gpuCount, req.gpuModel);
      if (model === null) return false;
      modelFree = countFreeGpus(host, model);
    } else if (req.gpuModel && req.gpuModel !== firstModel) {
      return false;
    }
  }
  const freeCpu: number = host.cpuCores - host.usedCpuCores;
  const freeMemory: number = host.memoryMib - host.usedMemoryMib;
  const newlyStranded: number =
    freeGpus === 0
      ? 0
      : strandedGpus(host, freeGpus - req.gpuCount, freeCpu - req.cpuCores, freeMemory - req.memoryMib, fedGpuShare) -
        strandedGpus(host, freeGpus, freeCpu, freeMemory, fedGpuShare);
  if (req.gpuCount > 0) {
    out[0] = newlyStranded;
    out[1] = modelFree - req.gpuCount;
    out[2] = freeGpus === host.gpus.length ? 1 : 0;
  } else {
    out[0] = freeGpus > 0 ? 1 : 0;
    out[1] = newlyStranded;
    out[2] = 0;
  }
  out[3] = freeCpu - req.cpuCores;
  out[4] = freeMemory - req.memoryMib;
  return true;
}

/** Free GPUs beyond what the free CPU and memory can feed at `fedGpuShare` of the host's per-GPU share. */
export function strandedGpus(
  host: SchedulerHost,
  freeGpus: number,
  freeCpu: number,
  freeMemory: number,
  fedGpuShare: number = FED_GPU_SHARE,
): number {
  if (freeGpus <= 0) return 0;
  const gpuTotal: number = host.gpus.length;
  const cpuPerGpu: number = (host.cpuCores / gpuTotal) * fedGpuShare;
  const memoryPerGpu: number = (host.memoryMib / gpuTotal) * fedGpuShare;
  const fed: number = Math.min(
    cpuPerGpu > 0 ? Math.floor(freeCpu / cpuPerGpu) : freeGpus,
    memoryPerGpu > 0 ? Math.floor(freeMemory / memoryPerGpu) : freeGpus,
  );
  return Math.max(0, freeGpus - fed);
}
