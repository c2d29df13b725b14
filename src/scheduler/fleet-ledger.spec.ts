import { applyPlacement, createFleetLedger, FleetLedger, releasePlacement } from './fleet-ledger';
import { SchedulerHost } from './scheduler.types';
import { makeGpus, makeHost, makeRequest } from './testing/host.factory';

function ledger(): FleetLedger {
  return createFleetLedger([
    makeHost('a', { gpus: makeGpus('a', 'l4-24gb', 2) }),
    makeHost('b', { gpus: [...makeGpus('b', 'l4-24gb', 1), ...makeGpus('b', 't4-16gb', 1, [], 1)] }),
  ]);
}

describe('fleet ledger', () => {
  it('applies and releases a placement', () => {
    const fleet: FleetLedger = ledger();
    const req = makeRequest({ cpuCores: 8, memoryMib: 1024, diskGib: 10, gpuCount: 2 });
    applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu1'] }, req);
    const host: SchedulerHost = fleet.hostById.get('a') as SchedulerHost;
    expect([host.usedCpuCores, host.usedMemoryMib, host.usedDiskGib, fleet.allocatedGpus]).toEqual([8, 1024, 10, 2]);
    expect(host.gpus.every((gpu) => !gpu.free)).toBe(true);

    releasePlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu1'] }, req);
    expect([host.usedCpuCores, host.usedMemoryMib, host.usedDiskGib, fleet.allocatedGpus]).toEqual([0, 0, 0, 0]);
    expect(host.gpus.every((gpu) => gpu.free)).toBe(true);
  });

  it.each([
    ['an unknown host', { hostId: 'zz', gpuIds: ['a-gpu0'] }, 1, /unknown host/],
    ['a GPU of another host', { hostId: 'a', gpuIds: ['b-gpu0'] }, 1, /not on host a/],
    ['a GPU named twice', { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu0'] }, 2, /twice/],
    ['two models', { hostId: 'b', gpuIds: ['b-gpu0', 'b-gpu1'] }, 2, /mixes GPU models/],
    ['the wrong GPU count', { hostId: 'a', gpuIds: ['a-gpu0'] }, 2, /asks for 2/],
  ])('refuses %s without changing anything', (_label, placement, gpuCount: number, message: RegExp) => {
    const fleet: FleetLedger = ledger();
    expect(() => applyPlacement(fleet, placement, makeRequest({ gpuCount }))).toThrow(message);
    expect(fleet.allocatedGpus).toBe(0);
    expect(fleet.hosts.every((host) => host.usedCpuCores === 0 && host.gpus.every((gpu) => gpu.free))).toBe(true);
  });

  it('refuses to allocate a GPU twice or to exceed capacity', () => {
    const fleet: FleetLedger = ledger();
    applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'] }, makeRequest());
    expect(() => applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'] }, makeRequest())).toThrow(/already allocated/);
    expect(() => applyPlacement(fleet, { hostId: 'a', gpuIds: [] }, makeRequest({ gpuCount: 0, cpuCores: 61 }))).toThrow(
      /exceeds/,
    );
  });

  it('refuses to release what is not in use', () => {
    const fleet: FleetLedger = ledger();
    expect(() => releasePlacement(fleet, { hostId: 'a', gpuIds: [] }, makeRequest({ gpuCount: 0 }))).toThrow(
      /more than is in use/,
    );
    applyPlacement(fleet, { hostId: 'a', gpuIds: [] }, makeRequest({ gpuCount: 0 }));
    expect(() => releasePlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'] }, makeRequest())).toThrow(/not allocated/);
  });

  it('rejects duplicate ids', () => {
    expect(() => createFleetLedger([makeHost('a'), makeHost('a')])).toThrow(/duplicate host/);
    expect(() =>
      createFleetLedger([makeHost('a', { gpus: makeGpus('x', 'm-8gb', 1) }), makeHost('b', { gpus: makeGpus('x', 'm-8gb', 1) })]),
    ).toThrow(/duplicate GPU/);
  });
});
