import fc from 'fast-check';
import {
  canonicalGpuModel,
  GPU_MODEL_ID_PATTERN,
  gpuModelName,
  MARKETED_MEMORY_SIZES_GB,
  marketedMemoryGb,
  matchGpuModel,
} from './gpu-model';

describe('canonicalGpuModel', () => {
  it.each([
    ['NVIDIA H200', 143771, 'h200-141gb'],
    ['NVIDIA H100 80GB HBM3', 81559, 'h100-80gb'],
    ['NVIDIA H100 PCIe', 81559, 'h100-80gb'],
    ['NVIDIA H100 NVL', 95830, 'h100-nvl-94gb'],
    ['NVIDIA A100-SXM4-80GB', 81920, 'a100-80gb'],
    ['NVIDIA A100 80GB PCIe', 81920, 'a100-80gb'],
    ['NVIDIA A100-PCIE-40GB', 40960, 'a100-40gb'],
    ['NVIDIA A100-SXM4-40GB', 40536, 'a100-40gb'],
    ['NVIDIA L40S', 46068, 'l40s-48gb'],
    ['NVIDIA L4', 23034, 'l4-24gb'],
    ['NVIDIA A10', 23028, 'a10-24gb'],
    ['Tesla T4', 15360, 't4-16gb'],
    ['Tesla V100-SXM2-16GB', 16160, 'v100-16gb'],
    ['Tesla V100-SXM2-32GB', 32510, 'v100-32gb'],
    ['Tesla V100-PCIE-32GB', 32510, 'v100-32gb'],
    ['Tesla P100-PCIE-16GB', 16280, 'p100-16gb'],
    ['NVIDIA RTX 6000 Ada Generation', 49140, 'rtx-6000-ada-48gb'],
    ['NVIDIA B200', 183359, 'b200-180gb'],
    ['NVIDIA GeForce RTX 4090', 24564, 'rtx-4090-24gb'],
    ['NVIDIA H100 80GB HBM2e', 81559, 'h100-80gb'],
    ['NVIDIA_A10G', 22731, 'a10g-24gb'],
  ])('%s with %i MiB is %s', (productName: string, memoryMib: number, expected: string) => {
    expect(canonicalGpuModel(productName, memoryMib)).toBe(expected);
    expect(expected).toMatch(GPU_MODEL_ID_PATTERN);
  });

  it('ignores case and extra whitespace', () => {
    expect(canonicalGpuModel('  nvidia   h200 ', 143771)).toBe('h200-141gb');
  });

  it('falls back to "unknown" when nothing but vendor words remain', () => {
    expect(gpuModelName('NVIDIA Tesla')).toBe('unknown');
    expect(canonicalGpuModel('NVIDIA', 16384)).toBe('unknown-16gb');
  });

  it('rejects a memory size that is not positive', () => {
    expect(() => canonicalGpuModel('NVIDIA H200', 0)).toThrow(RangeError);
    expect(() => canonicalGpuModel('NVIDIA H200', Number.NaN)).toThrow(RangeError);
  });

  it('always yields an id that matches GPU_MODEL_ID_PATTERN', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.integer({ min: 1, max: 2_000_000 }), (name: string, mib: number) => {
        expect(canonicalGpuModel(name, mib)).toMatch(GPU_MODEL_ID_PATTERN);
      }),
      { seed: 42 },
    );
  });
});

describe('marketedMemoryGb', () => {
  it('maps an exact marketed size to itself', () => {
    for (const size of MARKETED_MEMORY_SIZES_GB) {
      expect(marketedMemoryGb(size * 1024)).toBe(size);
    }
  });

  it('rounds beyond the largest known size', () => {
    expect(marketedMemoryGb(400 * 1024)).toBe(400);
  });

  it('lists sizes in ascending order', () => {
    const sorted: number[] = [...MARKETED_MEMORY_SIZES_GB].sort((a: number, b: number) => a - b);
    expect(MARKETED_MEMORY_SIZES_GB).toEqual(sorted);
  });
});

describe('GPU_MODEL_ID_PATTERN', () => {
  it.each(['h200-141gb', 'rtx-6000-ada-48gb', 'alibaba-g2-32gb'])('accepts %s', (id: string) => {
    expect(id).toMatch(GPU_MODEL_ID_PATTERN);
  });

  it.each(['H200-141gb', 'h200', 'h200-141', 'h200--141gb', '-141gb', 'h200-0gb', 'h200-141gb-', 'h 200-141gb'])(
    'rejects %s',
    (id: string) => {
      expect(id).not.toMatch(GPU_MODEL_ID_PATTERN);
    },
  );
});

describe('matchGpuModel', () => {
  const fleet = ['a100-40gb', 'a100-80gb', 'h100-80gb', 'h100-nvl-94gb', 'l4-24gb', 'l40s-48gb'];

  it.each([
    ['h100-80gb', 'h100-80gb'],
    ['H100', 'h100-80gb'],
    ['h100 80GB', 'h100-80gb'],
    ['NVIDIA H100 80GB HBM3', 'h100-80gb'],
    ['H100 NVL', 'h100-nvl-94gb'],
    ['L4', 'l4-24gb'],
    ['l40s', 'l40s-48gb'],
    ['NVIDIA A100-SXM4-80GB', 'a100-80gb'],
    ['A100 40G', 'a100-40gb'],
  ])('reads %j as %s', (input: string, model: string) => {
    expect(matchGpuModel(input, fleet)).toEqual({ model });
  });

  it('names the models an ambiguous name could mean, and none for one the fleet lacks', () => {
    expect(matchGpuModel('A100', fleet)).toEqual({ model: null, matches: ['a100-40gb', 'a100-80gb'] });
    expect(matchGpuModel('H100 40GB', fleet)).toEqual({ model: null, matches: [] });
    expect(matchGpuModel('B200', fleet)).toEqual({ model: null, matches: [] });
    expect(matchGpuModel('H200', [])).toEqual({ model: null, matches: [] });
  });
});
