import { countFreeGpus, fits } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';
import { chooseLowestScore } from './lowest-score-choice';

/**
 * The fitting host with the least left over after placement, compared as
 * (free GPUs of any model, free CPU cores, free memory); ties by name, then id.
 */
export const bestFitPolicy: PlacementPolicy = {
  name: 'best-fit',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest): Placement | null {
    return chooseLowestScore(hosts, req, 3, scoreBestFit);
  },
};

function scoreBestFit(host: SchedulerHost, req: PlacementRequest, out: Float64Array): boolean {
  if (!fits(host, req)) return false;
  out[0] = countFreeGpus(host) - req.gpuCount;
  out[1] = host.cpuCores - host.usedCpuCores - req.cpuCores;
  out[2] = host.memoryMib - host.usedMemoryMib - req.memoryMib;
  return true;
}
