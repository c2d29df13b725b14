import { PlacementRequest } from './scheduler.types';
import { createWorkloadTally, WorkloadClass, workloadMixOf, WorkloadTally } from './workload-mix';

function req(overrides: Partial<PlacementRequest>): PlacementRequest {
  return { cpuCores: 4, memoryMib: 1024, diskGib: 10, gpuCount: 0, gpuModel: null, ...overrides };
}

describe('workloadMixOf', () => {
  it('groups requests by GPU shape and accepted models, with their share, mean size and common sizes', () => {
    const mix = workloadMixOf([
      [req({ gpuCount: 1, cpuCores: 8 })],
      [req({ gpuCount: 1, cpuCores: 12 })],
      [req({ gpuCount: 1, cpuCores: 12 })],
      [req({ gpuProfile: '1/4' })],
      [req({ gpuCount: 1, gpuModel: 't4-16gb' }), req({ gpuCount: 1, gpuModel: 'a10-24gb' })],
      [req({})],
    ]);
    expect(mix.samples).toBe(6);
    const byKey = new Map(mix.classes.map((c: WorkloadClass) => [`${c.gpuCount}|${c.gpuProfile}|${c.models?.join(',')}`, c]));
    const one = byKey.get('1|null|undefined') as WorkloadClass;
    expect([one.weight, one.cpuCores, one.sizes.map((s) => [s.cpuCores, s.weight])]).toEqual([0.5, 32 / 3, [[12, 2 / 3], [8, 1 / 3]]]);
    expect(byKey.get('1|null|a10-24gb,t4-16gb')?.weight).toBeCloseTo(1 / 6);
    expect(byKey.get('0|1/4|undefined')?.weight).toBeCloseTo(1 / 6);
    expect(byKey.get('0|null|undefined')?.weight).toBeCloseTo(1 / 6);
    expect(mix.classes.reduce((sum, c) => sum + c.weight, 0)).toBeCloseTo(1);
  });

  it('treats a VM that accepts any model as unconstrained, even if one alternative names one', () => {
    const mix = workloadMixOf([[req({ gpuCount: 1, gpuModel: 't4-16gb' }), req({ gpuCount: 1 })]]);
    expect(mix.classes[0].models).toBeNull();
  });

  it('keeps the heaviest classes and re-weighs them', () => {
    const vms: PlacementRequest[][] = [];
    for (let k: number = 1; k <= 5; k++) for (let i: number = 0; i < k; i++) vms.push([req({ gpuCount: k })]);
    const mix = workloadMixOf(vms, 2);
    expect(mix.classes.map((c) => [c.gpuCount, c.weight])).toEqual([
      [5, 5 / 9],
      [4, 4 / 9],
    ]);
  });
});

describe('createWorkloadTally', () => {
  it('rebuilds the mix at every request for the first ten, then once a tenth more have come', () => {
    const tally: WorkloadTally = createWorkloadTally();
    const seen = new Set();
    for (let i: number = 0; i < 10; i++) {
      tally.record([req({ gpuCount: 1 })]);
      seen.add(tally.mix());
    }
    expect(seen.size).toBe(10);
    for (let i: number = 0; i < 100; i++) tally.record([req({ gpuCount: 2 })]);
    const rebuilt = tally.mix();
    expect(rebuilt.samples).toBe(110);
    tally.record([req({ gpuCount: 2 })]);
    expect(tally.mix()).toBe(rebuilt);
    // 110 at the last build: the next is due once 1/10 of the total has come since, at 123.
    for (let i: number = 0; i < 11; i++) tally.record([req({ gpuCount: 2 })]);
    expect(tally.mix()).toBe(rebuilt);
    tally.record([req({ gpuCount: 2 })]);
    expect(tally.mix()).not.toBe(rebuilt);
    expect(tally.mix().samples).toBe(123);
  });

  it('starts empty and ignores a VM without alternatives', () => {
    const tally: WorkloadTally = createWorkloadTally();
    tally.record([]);
    expect(tally.mix()).toEqual({ classes: [], samples: 0 });
  });
});
