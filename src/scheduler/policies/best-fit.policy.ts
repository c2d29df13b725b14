import { freeMilliGpu } from '../gpu-slots';
import { fits } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';
import { chooseLowestScore } from './lowest-score-choice';

/**
 * The fitting host with the least left over after placement, compared as
 * (free GPU capacity, free CPU cores, free memory); ties by name, then id.
 * (The request's own GPU share is the same on every host, so it is left out.)
 * GPU capacity counts every GPU's unclaimed share (freeMilliGpu), so a
 * fractional VM goes to the host with the least GPU room left, and there
 * to the GPU with the least room left for its profile.
 */
export const bestFitPolicy: PlacementPolicy = {
  name: 'best-fit',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest): Placement | null {
    return chooseLowestScore(hosts, req, 3, scoreBestFit, 'best-fit');
  },
};

function scoreBestFit(host: SchedulerHost, req: PlacementRequest, out: Float64Array): boolean {
  if (!fits(host, req)) return false;
  let freeMilli: number = 0;
  for (const gpu of host.gpus) freeMilli += freeMilliGpu(gpu);
  out[0] = freeMilli;
  out[1] = host.cpuCores - host.usedCpuCores - req.cpuCores;
  out[2] = host.memoryMib - host.usedMemoryMib - req.memoryMib;
  return true;
}
