import { fits, placementOn } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';

/**
 * A fitting host drawn uniformly with `random`; two passes so no candidate
 * list is built. A fractional request takes that host's first GPU that fits.
 */
export const randomFitPolicy: PlacementPolicy = {
  name: 'random-fit',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest, random: () => number): Placement | null {
    let fitting: number = 0;
    for (const host of hosts) {
      if (fits(host, req)) fitting++;
    }
    if (fitting === 0) return null;
    // Clamped in case an injected source returns exactly 1.
    let remaining: number = Math.min(fitting - 1, Math.floor(random() * fitting));
    for (const host of hosts) {
      if (!fits(host, req)) continue;
      if (remaining === 0) return placementOn(host, req, 'first-fit');
      remaining--;
    }
    return null;
  },
};
