import { fits, placementOn } from '../host-filter';
import { Placement, PlacementPolicy, PlacementRequest, SchedulerHost } from '../scheduler.types';

/** The first fitting host in input order. */
export const firstFitPolicy: PlacementPolicy = {
  name: 'first-fit',
  choose(hosts: readonly SchedulerHost[], req: PlacementRequest): Placement | null {
    for (const host of hosts) {
      if (fits(host, req)) return placementOn(host, req);
    }
    return null;
  },
};
