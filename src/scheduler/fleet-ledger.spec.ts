import { applyPlacement, createFleetLedger, FleetLedger, neverFitting, releasePlacement } from './fleet-ledger';
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
    applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu1'], claims: [] }, req);
    const host: SchedulerHost = fleet.hostById.get('a') as SchedulerHost;
    expect([host.usedCpuCores, host.usedMemoryMib, host.usedDiskGib, fleet.allocatedGpus]).toEqual([8, 1024, 10, 2]);
    expect(host.gpus.every((gpu) => !gpu.free)).toBe(true);

    releasePlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu1'], claims: [] }, req);
    expect([host.usedCpuCores, host.usedMemoryMib, host.usedDiskGib, fleet.allocatedGpus]).toEqual([0, 0, 0, 0]);
    expect(host.gpus.every((gpu) => gpu.free)).toBe(true);
  });

  it.each([
    ['an unknown host', { hostId: 'zz', gpuIds: ['a-gpu0'], claims: [] }, 1, /unknown host/],
    ['a GPU of another host', { hostId: 'a', gpuIds: ['b-gpu0'], claims: [] }, 1, /not on host a/],
    ['a GPU named twice', { hostId: 'a', gpuIds: ['a-gpu0', 'a-gpu0'], claims: [] }, 2, /twice/],
    ['two models', { hostId: 'b', gpuIds: ['b-gpu0', 'b-gpu1'], claims: [] }, 2, /mixes GPU models/],
    ['the wrong GPU count', { hostId: 'a', gpuIds: ['a-gpu0'], claims: [] }, 2, /asks for 2/],
  ])('refuses %s without changing anything', (_label, placement, gpuCount: number, message: RegExp) => {
    const fleet: FleetLedger = ledger();
    expect(() => applyPlacement(fleet, placement, makeRequest({ gpuCount }))).toThrow(message);
    expect(fleet.allocatedGpus).toBe(0);
    expect(fleet.hosts.every((host) => host.usedCpuCores === 0 && host.gpus.every((gpu) => gpu.free))).toBe(true);
  });

  it('refuses to allocate a GPU twice or to exceed capacity', () => {
    const fleet: FleetLedger = ledger();
    applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'], claims: [] }, makeRequest());
    expect(() => applyPlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'], claims: [] }, makeRequest())).toThrow(/already allocated/);
    expect(() => applyPlacement(fleet, { hostId: 'a', gpuIds: [], claims: [] }, makeRequest({ gpuCount: 0, cpuCores: 61 }))).toThrow(
      /exceeds/,
    );
  });

  it('refuses to release what is not in use', () => {
    const fleet: FleetLedger = ledger();
    expect(() => releasePlacement(fleet, { hostId: 'a', gpuIds: [], claims: [] }, makeRequest({ gpuCount: 0 }))).toThrow(
      /more than is in use/,
    );
    applyPlacement(fleet, { hostId: 'a', gpuIds: [], claims: [] }, makeRequest({ gpuCount: 0 }));
    expect(() => releasePlacement(fleet, { hostId: 'a', gpuIds: ['a-gpu0'], claims: [] }, makeRequest())).toThrow(/not allocated/);
  });

  it('rejects duplicate ids', () => {
    expect(() => createFleetLedger([makeHost('a'), makeHost('a')])).toThrow(/duplicate host/);
    expect(() =>
      createFleetLedger([makeHost('a', { gpus: makeGpus('x', 'm-8gb', 1) }), makeHost('b', { gpus: makeGpus('x', 'm-8gb', 1) })]),
    ).toThrow(/duplicate GPU/);
  });
});

describe('fleet ledger with fractional claims', () => {
  function sharedLedger(): FleetLedger {
    return createFleetLedger([
      makeHost('m', { gpus: [{ id: 'm-gpu0', index: 0, model: 'h200-141gb', free: true, sharingMode: 'mig', usedSlots: 0, vgpuProfile: null }] }),
      makeHost('v', { gpus: [{ id: 'v-gpu0', index: 0, model: 't4-16gb', free: true, sharingMode: 'vgpu', usedSlots: 0, vgpuProfile: null }] }),
    ]);
  }
  const migReq = makeRequest({ gpuCount: 0, gpuProfile: '3g.71gb' });

  it('applies and releases a MIG claim, counting its milli-GPUs and bumping the host version', () => {
    const fleet: FleetLedger = sharedLedger();
    const host: SchedulerHost = fleet.hostById.get('m') as SchedulerHost;
    const placement = { hostId: 'm', gpuIds: [], claims: [{ gpuId: 'm-gpu0', profile: '3g.71gb', slots: [4, 5, 6, 7] }] };
    applyPlacement(fleet, placement, migReq);
    expect([host.gpus[0].usedSlots, host.gpus[0].free, fleet.allocatedMilli, fleet.allocatedGpus, host.version]).toEqual([0xf0, false, 429, 1, 1]);
    releasePlacement(fleet, placement, migReq);
    expect([host.gpus[0].usedSlots, host.gpus[0].free, fleet.allocatedMilli, fleet.allocatedGpus, host.version]).toEqual([0, true, 0, 0, 2]);
  });

  it('counts a GPU once however many vGPUs it holds', () => {
    const fleet: FleetLedger = sharedLedger();
    const req = makeRequest({ gpuCount: 0, gpuProfile: '1/4' });
    applyPlacement(fleet, { hostId: 'v', gpuIds: [], claims: [{ gpuId: 'v-gpu0', profile: '1/4', slots: [0] }] }, req);
    applyPlacement(fleet, { hostId: 'v', gpuIds: [], claims: [{ gpuId: 'v-gpu0', profile: '1/4', slots: [1] }] }, req);
    expect([fleet.allocatedGpus, fleet.allocatedMilli]).toEqual([1, 500]);
  });

  it.each<[string, object, RegExp]>([
    ['no claim for a profile request', { hostId: 'm', gpuIds: [], claims: [] }, /0 fractional claims, request asks for 1/],
    ['a claim for another profile', { hostId: 'm', gpuIds: [], claims: [{ gpuId: 'm-gpu0', profile: '2g.35gb', slots: [0, 1] }] }, /claim is for 2g.35gb/],
    ['a GPU on another host', { hostId: 'm', gpuIds: [], claims: [{ gpuId: 'v-gpu0', profile: '3g.71gb', slots: [0, 1, 2, 3] }] }, /not on host m/],
    ['an invalid placement', { hostId: 'm', gpuIds: [], claims: [{ gpuId: 'm-gpu0', profile: '3g.71gb', slots: [2, 3, 4, 5] }] }, /not a valid 3g.71gb placement/],
  ])('refuses %s without changing anything', (_label: string, placement: object, message: RegExp) => {
    const fleet: FleetLedger = sharedLedger();
    expect(() => applyPlacement(fleet, placement as Parameters<typeof applyPlacement>[1], migReq)).toThrow(message);
    expect([fleet.allocatedMilli, fleet.hosts[0].usedCpuCores, fleet.hosts[0].gpus[0].usedSlots]).toEqual([0, 0, 0]);
  });

  it('refuses a whole-GPU placement on a shared GPU and a fleet that starts with claims', () => {
    const fleet: FleetLedger = sharedLedger();
    expect(() => applyPlacement(fleet, { hostId: 'v', gpuIds: ['v-gpu0'], claims: [] }, makeRequest({ gpuCount: 1 }))).toThrow(/not in passthrough mode/);
    expect(() => createFleetLedger([makeHost('x', { gpus: [{ id: 'x0', index: 0, model: 't4-16gb', free: false, sharingMode: 'vgpu', usedSlots: 1, vgpuProfile: '1/2' }] })])).toThrow(
      /starts with claimed slots/,
    );
  });

  it('finds the tasks no host of the fresh fleet could ever hold, trying each task\'s requests in turn', () => {
    const hosts: SchedulerHost[] = [
      makeHost('a', { gpus: makeGpus('a', 'l4-24gb', 2) }),
      makeHost('b', { cpuCores: 8, gpus: makeGpus('b', 't4-16gb', 1) }),
    ];
    const tasks = [
      [makeRequest({ gpuCount: 2, gpuModel: 'l4-24gb' })], // fits a
      [makeRequest({ gpuCount: 3 })], // no host has three GPUs of one model
      [makeRequest({ cpuCores: 65, gpuCount: 0 })], // no host has 65 cores
      [makeRequest({ gpuModel: 'h100-80gb' })], // no host has the model
      [makeRequest({ gpuModel: 'h100-80gb' }), makeRequest({ gpuModel: 't4-16gb', cpuCores: 8 })], // the second fits b
      [makeRequest({ gpuModel: 't4-16gb', cpuCores: 9 })], // b has the model but 8 cores
    ];
    expect(neverFitting(hosts, tasks)).toEqual([false, true, true, true, false, true]);
    // A fleet already busy is not what it asks about: the check works on a copy and leaves the hosts alone.
    expect(hosts.every((host) => host.usedCpuCores === 0 && host.gpus.every((gpu) => gpu.free))).toBe(true);
  });
});
