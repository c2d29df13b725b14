import { fits, placementOn } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';

/** The first fitting host in input order; a fractional request takes that host's first GPU that fits. */
export const firstFitPolicy: PlacementPolicy = {
  name: 'first-fit',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest): Placement | null {
    for (const host of hosts) {
      if (fits(host, req)) return placementOn(host, req, 'first-fit');
    }
    return null;
  },
};
