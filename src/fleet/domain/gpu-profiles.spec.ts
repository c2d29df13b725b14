import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  findGpuProfile,
  findMigProfile,
  isKnownMigProfileName,
  MIG_COMPUTE_SLICES,
  MIG_PROFILES_BY_MODEL,
  MigProfile,
  migProfilesFor,
  milliGpuForComputeSlices,
  milliGpuOf,
  smallestMigProfileFor,
  smallestVgpuProfileFor,
  supportsMig,
  validProfileNames,
  VGPU_PROFILES,
} from './gpu-profiles';
import { canonicalGpuModel } from './gpu-model';

interface NvmlProfile {
  id: number;
  slice_count: number;
  instance_count: number;
  memory_mib: number;
  multiprocessor_count: number;
  copy_engine_count: number;
}

const inventory = JSON.parse(
  readFileSync(join(__dirname, '../../../test/fixtures/nvidia-smi/h200-nvml-inventory.json'), 'utf8'),
) as { devices: { name: string; memory_total_bytes: number; gpu_instance_profiles: NvmlProfile[] }[] };

/** Every set of non-overlapping placements on one empty GPU, as [profile, start] lists. */
function allLayouts(table: readonly MigProfile[]): [MigProfile, number][][] {
  const placements: [MigProfile, number, number][] = table.flatMap((profile: MigProfile) =>
    profile.startSlots.map((start: number): [MigProfile, number, number] => [
      profile,
      start,
      (((1 << profile.memorySlices) - 1) << start) | (profile.mediaExtensions ? 1 << 8 : 0),
    ]),
  );
  const layouts: [MigProfile, number][][] = [];
  const walk = (from: number, used: number, layout: [MigProfile, number][]): void => {
    layouts.push(layout);
    for (let i: number = from; i < placements.length; i++) {
      const [profile, start, mask] = placements[i];
      if ((used & mask) === 0) walk(i + 1, used | mask, [...layout, [profile, start]]);
    }
  };
  walk(0, 0, []);
  return layouts;
}

describe('MIG profile tables', () => {
  const device = inventory.devices[0];
  const h200: readonly MigProfile[] = migProfilesFor('h200-141gb');

  it('key the H200 table by the model id its nvidia-smi name and memory give', () => {
    expect(canonicalGpuModel(device.name, device.memory_total_bytes / 2 ** 20)).toBe('h200-141gb');
  });

  it("give the H200 exactly NVML's profiles: ids, slices, instances, memory, SMs, copy engines", () => {
    const fromNvml = device.gpu_instance_profiles
      .map((p: NvmlProfile) => [p.id, p.slice_count, p.instance_count, p.memory_mib, p.multiprocessor_count, p.copy_engine_count])
      .sort((a, b) => a[0] - b[0]);
    const ours = h200
      .map((p: MigProfile) => [p.nvmlId, p.computeSlices, p.maxInstances, p.memoryMib, p.multiprocessors, p.copyEngines])
      .sort((a, b) => (a[0] as number) - (b[0] as number));
    expect(ours).toEqual(fromNvml);
  });

  it('name the H200 profiles as nvidia-smi mig -lgip does', () => {
    expect(h200.map((p: MigProfile) => p.name)).toEqual(['1g.18gb', '1g.18gb+me', '1g.35gb', '2g.35gb', '3g.71gb', '4g.71gb', '7g.141gb']);
  });

  it.each(Object.keys(MIG_PROFILES_BY_MODEL))('follow the documented placement rules on %s', (model: string) => {
    const byCompute = (slices: number, memory: number): MigProfile =>
      migProfilesFor(model).find((p) => p.computeSlices === slices && p.memorySlices === memory && !p.mediaExtensions) as MigProfile;
    expect(byCompute(2, 2).startSlots).toEqual([0, 2, 4]);
    expect(byCompute(3, 4).startSlots).toEqual([0, 4]);
    expect(byCompute(4, 4).startSlots).toEqual([0]);
    expect(byCompute(7, 8).startSlots).toEqual([0]);
    expect(byCompute(1, 1).startSlots).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it.each(Object.keys(MIG_PROFILES_BY_MODEL))('on %s, the slot layout alone allows each profile exactly its documented instance count', (model: string) => {
    for (const profile of migProfilesFor(model)) {
      const alone: number = Math.max(
        ...allLayouts([profile]).map((layout) => layout.length),
      );
      expect([profile.name, alone]).toEqual([profile.name, profile.maxInstances]);
    }
  });

  it.each(Object.keys(MIG_PROFILES_BY_MODEL))('on %s, no layout of non-overlapping placements uses more than 7 compute slices', (model: string) => {
    const layouts = allLayouts(migProfilesFor(model));
    expect(layouts.length).toBeGreaterThan(100);
    for (const layout of layouts) {
      expect(layout.reduce((sum: number, [p]) => sum + p.computeSlices, 0)).toBeLessThanOrEqual(MIG_COMPUTE_SLICES);
    }
  });

  it('put the media extensions on one instance per GPU', () => {
    for (const table of Object.values(MIG_PROFILES_BY_MODEL)) {
      expect(table.filter((p: MigProfile) => p.mediaExtensions).map((p) => [p.computeSlices, p.maxInstances])).toEqual([[1, 1]]);
    }
  });

  it('cover A100 40GB and 80GB, H100 80GB and H100 NVL, and nothing else', () => {
    expect(Object.keys(MIG_PROFILES_BY_MODEL).sort()).toEqual(['a100-40gb', 'a100-80gb', 'h100-80gb', 'h100-nvl-94gb', 'h200-141gb']);
    expect(canonicalGpuModel('NVIDIA A100-SXM4-40GB', 40960)).toBe('a100-40gb');
    expect(canonicalGpuModel('NVIDIA H100 NVL', 95830)).toBe('h100-nvl-94gb');
    expect(supportsMig('l40s-48gb')).toBe(false);
    expect(migProfilesFor('toString')).toEqual([]);
  });

  it('resolve a MIG name only on its model, since names mean different partitions on different models', () => {
    expect(findMigProfile('a100-40gb', '1g.10gb')?.memorySlices).toBe(2);
    expect(findMigProfile('h100-80gb', '1g.10gb')?.memorySlices).toBe(1);
    expect(findGpuProfile('l40s-48gb', '1g.10gb')).toBeNull();
    expect(findGpuProfile('l40s-48gb', '1/4')?.kind).toBe('vgpu');
    expect(isKnownMigProfileName('3g.71gb')).toBe(true);
    expect(isKnownMigProfileName('3g.72gb')).toBe(false);
  });

  it('list vGPU sizes then MIG profiles as the valid names for a model', () => {
    expect(validProfileNames('h200-141gb')).toEqual([
      '1/8', '1/4', '1/2', '1', '1g.18gb', '1g.18gb+me', '1g.35gb', '2g.35gb', '3g.71gb', '4g.71gb', '7g.141gb',
    ]);
    expect(validProfileNames('t4-16gb')).toEqual(['1/8', '1/4', '1/2', '1']);
  });
});

describe('milli-GPU weights', () => {
  it('round compute slices / 7 up, so rounding never lets a quota be exceeded', () => {
    expect([1, 2, 3, 4, 7].map(milliGpuForComputeSlices)).toEqual([143, 286, 429, 572, 1000]);
    for (let slices: number = 1; slices <= 7; slices++) {
      expect(milliGpuForComputeSlices(slices) / 1000).toBeGreaterThanOrEqual(slices / 7);
    }
  });

  it('weigh vGPUs by their frame-buffer share and whole GPUs at 1000', () => {
    expect(VGPU_PROFILES.map((p) => [p.name, p.milliGpu, p.perGpu])).toEqual([
      ['1/8', 125, 8],
      ['1/4', 250, 4],
      ['1/2', 500, 2],
      ['1', 1000, 1],
    ]);
    expect(milliGpuOf({ gpuCount: 3 })).toBe(3000);
    expect(milliGpuOf({ gpuCount: 0, gpuProfile: '1/4' })).toBe(250);
    expect(milliGpuOf({ gpuCount: 0, gpuProfile: '3g.71gb', gpuModel: 'h200-141gb' })).toBe(429);
  });

  it('charge a MIG name without a model as its heaviest meaning, and refuse unknown names', () => {
    // 1g.10gb is a 1g on H100 and A100 80GB and also the two-slice 1g on A100 40GB: all 143.
    expect(milliGpuOf({ gpuCount: 0, gpuProfile: '1g.10gb' })).toBe(143);
    expect(() => milliGpuOf({ gpuCount: 0, gpuProfile: '5g.1gb' })).toThrow(RangeError);
    expect(() => milliGpuOf({ gpuCount: 0, gpuProfile: '3g.71gb', gpuModel: 'h100-80gb' })).toThrow(/for h100-80gb/);
  });
});

describe('mapping a GPU share to a profile', () => {
  it.each([
    [1, '1/8'],
    [125, '1/8'],
    [126, '1/4'],
    [250, '1/4'],
    [251, '1/2'],
    [500, '1/2'],
    [501, '1'],
    [1000, '1'],
  ])('gives %p milli-GPUs the vGPU %p', (milli: number, name: string) => {
    expect(smallestVgpuProfileFor(milli).name).toBe(name);
  });

  it.each([
    [100, '1g.18gb'],
    [143, '1g.18gb'],
    [144, '2g.35gb'],
    [300, '3g.71gb'],
    [430, '4g.71gb'],
    [600, '7g.141gb'],
  ])('gives %p milli-GPUs the H200 MIG profile %p (fewest compute slices, never +me)', (milli: number, name: string) => {
    expect(smallestMigProfileFor('h200-141gb', milli)?.name).toBe(name);
  });

  it('has no MIG profile for a model without MIG, and refuses shares outside 1..1000', () => {
    expect(smallestMigProfileFor('t4-16gb', 200)).toBeNull();
    for (const bad of [0, 1001, 2.5, Number.NaN]) expect(() => smallestVgpuProfileFor(bad)).toThrow(RangeError);
  });
});
