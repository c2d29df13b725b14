import {
  compareHostsByName,
  countFreeGpus,
  fits,
  freeGpusOfModel,
  hasFreeResources,
  placementOn,
  selectGpuModel,
} from './host-filter';
import { SchedulerGpu, SchedulerHost } from './scheduler.types';
import { makeGpus, makeHost, makeRequest } from './testing/host.factory';

describe('fits', () => {
  const host: SchedulerHost = makeHost('h1', { gpus: makeGpus('h1', 'h100-80gb', 4) });

  it('accepts a request that the idle host can hold', () => {
    expect(fits(host, makeRequest({ gpuCount: 4 }))).toBe(true);
  });

  it.each(['draining', 'down'] as const)('rejects a %s host', (state: 'draining' | 'down') => {
    expect(fits({ ...host, state }, makeRequest())).toBe(false);
  });

  it('matches the region when one is requested', () => {
    expect(fits(host, makeRequest({ region: 'r1' }))).toBe(true);
    expect(fits(host, makeRequest({ region: 'r2' }))).toBe(false);
    expect(fits(host, makeRequest({ region: null }))).toBe(true);
    expect(fits(host, makeRequest({ region: undefined }))).toBe(true);
  });

  it('needs enough free CPU, counting what is used', () => {
    expect(fits({ ...host, usedCpuCores: 60 }, makeRequest({ cpuCores: 4 }))).toBe(true);
    expect(fits({ ...host, usedCpuCores: 61 }, makeRequest({ cpuCores: 4 }))).toBe(false);
  });

  it('needs enough free memory', () => {
    expect(fits({ ...host, usedMemoryMib: host.memoryMib - 1024 }, makeRequest({ memoryMib: 1024 }))).toBe(true);
    expect(fits({ ...host, usedMemoryMib: host.memoryMib - 1023 }, makeRequest({ memoryMib: 1024 }))).toBe(false);
  });

  it('needs enough free disk', () => {
    expect(fits({ ...host, usedDiskGib: 1998 }, makeRequest({ diskGib: 50 }))).toBe(true);
    expect(fits({ ...host, usedDiskGib: 1999 }, makeRequest({ diskGib: 50 }))).toBe(false);
  });

  it('needs enough free GPUs', () => {
    const busy: SchedulerHost = { ...host, gpus: makeGpus('h1', 'h100-80gb', 4, [0, 2]) };
    expect(fits(busy, makeRequest({ gpuCount: 2 }))).toBe(true);
    expect(fits(busy, makeRequest({ gpuCount: 3 }))).toBe(false);
  });

  it('needs free GPUs of the requested model', () => {
    expect(fits(host, makeRequest({ gpuModel: 'h100-80gb' }))).toBe(true);
    expect(fits(host, makeRequest({ gpuModel: 'a100-80gb' }))).toBe(false);
  });

  it('never counts two models together', () => {
    const mixed: SchedulerHost = makeHost('m', {
      gpus: [...makeGpus('m', 'a100-80gb', 2), ...makeGpus('m', 'a100-40gb', 2, [], 2)],
    });
    expect(fits(mixed, makeRequest({ gpuCount: 2 }))).toBe(true);
    expect(fits(mixed, makeRequest({ gpuCount: 3 }))).toBe(false);
  });

  it('lets a CPU-only request onto a host without GPUs or with all GPUs taken', () => {
    expect(fits(makeHost('cpu'), makeRequest({ gpuCount: 0 }))).toBe(true);
    expect(fits({ ...host, gpus: makeGpus('h1', 'h100-80gb', 4, [0, 1, 2, 3]) }, makeRequest({ gpuCount: 0 }))).toBe(
      true,
    );
  });

  it('rejects a GPU request on a host without GPUs', () => {
    expect(fits(makeHost('cpu'), makeRequest({ gpuCount: 1 }))).toBe(false);
  });
});

describe('hasFreeResources', () => {
  it('ignores GPUs', () => {
    expect(hasFreeResources(makeHost('cpu'), makeRequest({ gpuCount: 8 }))).toBe(true);
  });
});

describe('countFreeGpus and freeGpusOfModel', () => {
  const host: SchedulerHost = makeHost('h', {
    gpus: [
      { id: 'b3', index: 3, model: 'b', free: true },
      { id: 'a1', index: 1, model: 'a', free: true },
      { id: 'b0', index: 0, model: 'b', free: true },
      { id: 'a2', index: 2, model: 'a', free: false },
    ],
  });

  it('counts free GPUs, of one model or of all', () => {
    expect(countFreeGpus(host)).toBe(3);
    expect(countFreeGpus(host, 'a')).toBe(1);
    expect(countFreeGpus(host, 'b')).toBe(2);
    expect(countFreeGpus(host, 'c')).toBe(0);
  });

  it('lists free GPUs by index', () => {
    expect(freeGpusOfModel(host, 'b').map((gpu: SchedulerGpu) => gpu.id)).toEqual(['b0', 'b3']);
    expect(freeGpusOfModel(host).map((gpu: SchedulerGpu) => gpu.id)).toEqual(['b0', 'a1', 'b3']);
  });
});

describe('selectGpuModel', () => {
  const mixed: SchedulerHost = makeHost('m', {
    gpus: [...makeGpus('m', 'l4-24gb', 4), ...makeGpus('m', 'a10-24gb', 2, [], 4), ...makeGpus('m', 't4-16gb', 2, [], 6)],
  });

  it('takes the requested model only', () => {
    expect(selectGpuModel(mixed, 2, 'l4-24gb')).toBe('l4-24gb');
    expect(selectGpuModel(mixed, 5, 'l4-24gb')).toBeNull();
  });

  it('without a model, takes the model with the fewest free GPUs that suffice, then the smallest id', () => {
    expect(selectGpuModel(mixed, 1)).toBe('a10-24gb');
    expect(selectGpuModel(mixed, 3)).toBe('l4-24gb');
    expect(selectGpuModel(mixed, 5)).toBeNull();
  });

  it('handles a host with one model and with none', () => {
    expect(selectGpuModel(makeHost('h', { gpus: makeGpus('h', 'x-8gb', 2, [0]) }), 1)).toBe('x-8gb');
    expect(selectGpuModel(makeHost('h', { gpus: makeGpus('h', 'x-8gb', 2, [0]) }), 2)).toBeNull();
    expect(selectGpuModel(makeHost('h'), 1)).toBeNull();
  });
});

describe('placementOn', () => {
  it('takes the lowest free indexes of the selected model', () => {
    const host: SchedulerHost = makeHost('h', { gpus: makeGpus('h', 'h100-80gb', 8, [0, 2]).reverse() });
    expect(placementOn(host, makeRequest({ gpuCount: 3 }))).toEqual({ hostId: 'h', gpuIds: ['h-gpu1', 'h-gpu3', 'h-gpu4'], claims: [] });
  });

  it('gives no GPUs to a CPU-only request', () => {
    expect(placementOn(makeHost('h'), makeRequest({ gpuCount: 0 }))).toEqual({ hostId: 'h', gpuIds: [], claims: [] });
  });

  it('refuses to place GPUs that are not there', () => {
    expect(() => placementOn(makeHost('h'), makeRequest({ gpuCount: 1 }))).toThrow(/fewer than 1 free GPUs/);
  });
});

describe('compareHostsByName', () => {
  it('orders by name, then id', () => {
    expect(compareHostsByName(makeHost('b', { name: 'a' }), makeHost('a', { name: 'b' }))).toBeLessThan(0);
    expect(compareHostsByName(makeHost('a', { name: 'x' }), makeHost('b', { name: 'x' }))).toBeLessThan(0);
    expect(compareHostsByName(makeHost('a'), makeHost('a'))).toBe(0);
  });
});

describe('fractional requests', () => {
  const shared = (id: string, index: number, model: string, sharingMode: 'vgpu' | 'mig', usedSlots: number = 0, vgpuProfile: string | null = null): SchedulerGpu => ({
    id,
    index,
    model,
    free: usedSlots === 0,
    sharingMode,
    usedSlots,
    vgpuProfile,
  });
  const host: SchedulerHost = makeHost('h', {
    gpus: [
      shared('h-gpu0', 0, 't4-16gb', 'vgpu'),
      shared('h-gpu1', 1, 't4-16gb', 'vgpu', 0b0111, '1/4'),
      shared('h-gpu2', 2, 'h200-141gb', 'mig', 0b0000_1111),
      ...makeGpus('h', 't4-16gb', 1, [], 3),
    ],
  });

  it('fit a profile only on a GPU in its mode whose model has it, with room', () => {
    expect(fits(host, makeRequest({ gpuCount: 0, gpuProfile: '1/2' }))).toBe(true);
    expect(fits(host, makeRequest({ gpuCount: 0, gpuProfile: '3g.71gb' }))).toBe(true);
    expect(fits(host, makeRequest({ gpuCount: 0, gpuProfile: '4g.71gb' }))).toBe(false);
    expect(fits(host, makeRequest({ gpuCount: 0, gpuProfile: '3g.71gb', gpuModel: 't4-16gb' }))).toBe(false);
    expect(fits(host, makeRequest({ gpuCount: 0, gpuProfile: '3g.40gb' }))).toBe(false);
  });

  it('count only free passthrough GPUs as whole GPUs', () => {
    expect(countFreeGpus(host)).toBe(1);
    expect(fits(host, makeRequest({ gpuCount: 2 }))).toBe(false);
  });

  it('take the first fitting GPU, or the one left with the least room for the profile', () => {
    expect(placementOn(host, makeRequest({ gpuCount: 0, gpuProfile: '1/4' }), 'first-fit').claims).toEqual([{ gpuId: 'h-gpu0', profile: '1/4', slots: [0] }]);
    expect(placementOn(host, makeRequest({ gpuCount: 0, gpuProfile: '1/4' }), 'best-fit').claims).toEqual([{ gpuId: 'h-gpu1', profile: '1/4', slots: [3] }]);
    expect(placementOn(host, makeRequest({ gpuCount: 0, gpuProfile: '2g.35gb' })).claims).toEqual([{ gpuId: 'h-gpu2', profile: '2g.35gb', slots: [4, 5] }]);
  });

  it('throw when asked to place what does not fit', () => {
    expect(() => placementOn(host, makeRequest({ gpuCount: 0, gpuProfile: '7g.141gb' }))).toThrow(/no GPU that can take a 7g.141gb/);
  });
});
