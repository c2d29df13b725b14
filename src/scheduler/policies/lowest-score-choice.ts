import { compareHostsByName, GpuChoice, placementOn } from '../host-filter';
import { Placement, PlacementRequest, SchedulerHost } from '../scheduler.types';

/**
 * Writes the host's score for the request into `out` (lower is better,
 * compared key by key) and returns true, or returns false when the host does
 * not fit. Scores go into a reused buffer so scoring ~1,500 hosts allocates nothing.
 */
export type HostScorer = (host: SchedulerHost, req: PlacementRequest, out: Float64Array) => boolean;

/**
 * The fitting host with the lexicographically lowest score; ties go to the
 * smaller name, then id. A fractional request takes the GPU `choice` picks there.
 */
export function chooseLowestScore(
  hosts: readonly SchedulerHost[],
  req: PlacementRequest,
  keyCount: number,
  score: HostScorer,
  choice: GpuChoice = 'best-fit',
): Placement | null {
  const current: Float64Array = new Float64Array(keyCount);
  const best: Float64Array = new Float64Array(keyCount);
  let bestHost: SchedulerHost | null = null;
  for (const host of hosts) {
    if (!score(host, req, current)) continue;
    if (bestHost === null || isBetter(current, best, host, bestHost)) {
      best.set(current);
      bestHost = host;
    }
  }
  return bestHost === null ? null : placementOn(bestHost, req, choice);
}

function isBetter(score: Float64Array, best: Float64Array, host: SchedulerHost, bestHost: SchedulerHost): boolean {
  for (let k: number = 0; k < score.length; k++) {
    if (score[k] !== best[k]) return score[k] < best[k];
  }
  return compareHostsByName(host, bestHost) < 0;
}
