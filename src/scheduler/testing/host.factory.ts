import { PlacementRequest, SchedulerGpu, SchedulerHost } from '../scheduler.types';

/** Test-only builders: an idle active host in region "r1" with 64 cores, 512 GiB and 2 TiB unless overridden. */
export function makeHost(id: string, overrides: Partial<SchedulerHost> = {}): SchedulerHost {
  return {
    id,
    name: id,
    region: 'r1',
    state: 'active',
    cpuCores: 64,
    memoryMib: 512 * 1024,
    diskGib: 2048,
    usedCpuCores: 0,
    usedMemoryMib: 0,
    usedDiskGib: 0,
    gpus: [],
    ...overrides,
  };
}

/** `count` GPUs of one model with ids `${hostId}-gpu${index}`; `taken` lists indexes that are not free. */
export function makeGpus(
  hostId: string,
  model: string,
  count: number,
  taken: readonly number[] = [],
  firstIndex: number = 0,
): SchedulerGpu[] {
  return Array.from({ length: count }, (_: unknown, i: number): SchedulerGpu => {
    const index: number = firstIndex + i;
    return { id: `${hostId}-gpu${index}`, index, model, free: !taken.includes(index) };
  });
}

export function makeRequest(overrides: Partial<PlacementRequest> = {}): PlacementRequest {
  return { cpuCores: 4, memoryMib: 16 * 1024, diskGib: 50, gpuCount: 1, gpuModel: null, region: null, ...overrides };
}
