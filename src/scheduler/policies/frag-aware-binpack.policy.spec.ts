import { Placement, SchedulerHost } from '../scheduler.types';
import { makeGpus, makeHost, makeRequest } from '../testing/host.factory';
import {
  createFragAwareBinpackPolicy,
  FED_GPU_SHARE,
  fragAwareBinpackPolicy,
  strandedGpus,
} from './frag-aware-binpack.policy';

const noRandom = (): number => 0;

function chosen(hosts: SchedulerHost[], overrides: Parameters<typeof makeRequest>[0]): string | undefined {
  return fragAwareBinpackPolicy.choose(hosts, makeRequest(overrides), noRandom)?.hostId;
}

/** An 8-GPU host with 96 cores and 768 GiB, i.e. 12 cores and 96 GiB per GPU. */
function gpuHost(id: string, taken: number[] = [], overrides: Partial<SchedulerHost> = {}): SchedulerHost {
  return makeHost(id, { cpuCores: 96, memoryMib: 768 * 1024, gpus: makeGpus(id, 'h100-80gb', 8, taken), ...overrides });
}

describe('fragAwareBinpackPolicy', () => {
  describe('GPU requests', () => {
    it('puts a 1-GPU VM on a partly used host rather than breaking a whole 8-GPU host', () => {
      const hosts: SchedulerHost[] = [gpuHost('a-whole'), gpuHost('b-used', [0, 1, 2], { usedCpuCores: 12 })];
      expect(chosen(hosts, { gpuCount: 1 })).toBe('b-used');
    });

    it('fits GPUs tightly: the host left with the fewest free GPUs of the model wins', () => {
      const hosts: SchedulerHost[] = [
        gpuHost('a-three-free', [0, 1, 2, 3, 4], { usedCpuCores: 30 }),
        gpuHost('b-one-free', [0, 1, 2, 3, 4, 5, 6], { usedCpuCores: 30 }),
        makeHost('c-small', { cpuCores: 24, gpus: makeGpus('c-small', 'h100-80gb', 2) }),
      ];
      expect(chosen(hosts, { gpuCount: 1 })).toBe('b-one-free');
    });

    it('among equal GPU fits, cuts into a used host and keeps a whole one, even with more CPU left', () => {
      const hosts: SchedulerHost[] = [
        makeHost('a-whole-four', { cpuCores: 48, memoryMib: 384 * 1024, gpus: makeGpus('a-whole-four', 'h100-80gb', 4) }),
        gpuHost('b-half-used', [0, 1, 2, 3], { usedCpuCores: 8 }),
      ];
      expect(chosen(hosts, { gpuCount: 1 })).toBe('b-half-used');
    });

    it('avoids stranding the rest of a host: a CPU-heavy 1-GPU VM goes where the CPU is spare', () => {
      // On "a" the VM would leave 7 GPUs with 32 cores, enough for 5 at half a per-GPU share (6 cores): 2 stranded.
      const hosts: SchedulerHost[] = [
        gpuHost('a-gpu-rich', [], {}),
        makeHost('b-cpu-rich', { cpuCores: 256, memoryMib: 1024 * 1024, gpus: makeGpus('b-cpu-rich', 'h100-80gb', 8) }),
      ];
      expect(chosen(hosts, { gpuCount: 1, cpuCores: 64 })).toBe('b-cpu-rich');
    });

    it('counts only newly stranded GPUs, so a host already short of CPU can still take a small VM', () => {
      // "a" has 4 free GPUs but CPU for one; placing there strands nothing that was not stranded already.
      const hosts: SchedulerHost[] = [
        gpuHost('a-short-of-cpu', [0, 1, 2, 3], { usedCpuCores: 90 }),
        gpuHost('b-balanced', [0, 1, 2, 3], { usedCpuCores: 6 }),
      ];
      expect(chosen(hosts, { gpuCount: 1, cpuCores: 4 })).toBe('a-short-of-cpu');
    });

    it('only considers the requested model and never mixes models', () => {
      const mixed: SchedulerHost = makeHost('mixed', {
        gpus: [...makeGpus('mixed', 'l4-24gb', 1), ...makeGpus('mixed', 'l40s-48gb', 1, [], 1)],
      });
      expect(fragAwareBinpackPolicy.choose([mixed], makeRequest({ gpuCount: 2 }), noRandom)).toBeNull();
      expect(
        fragAwareBinpackPolicy.choose([mixed], makeRequest({ gpuCount: 1, gpuModel: 'l40s-48gb' }), noRandom),
      ).toEqual<Placement>({ hostId: 'mixed', gpuIds: ['mixed-gpu1'] });
    });

    it('takes the lowest free indexes on the chosen host', () => {
      const hosts: SchedulerHost[] = [gpuHost('a', [1, 4])];
      expect(fragAwareBinpackPolicy.choose(hosts, makeRequest({ gpuCount: 3 }), noRandom)).toEqual<Placement>({
        hostId: 'a',
        gpuIds: ['a-gpu0', 'a-gpu2', 'a-gpu3'],
      });
    });
  });

  describe('CPU-only requests', () => {
    it('go to hosts without GPUs before GPU hosts, even when the GPU host fits tighter', () => {
      const hosts: SchedulerHost[] = [
        gpuHost('a-gpu', [], { usedCpuCores: 90 }),
        makeHost('b-cpu', { cpuCores: 128, memoryMib: 1024 * 1024 }),
      ];
      expect(chosen(hosts, { gpuCount: 0, cpuCores: 4 })).toBe('b-cpu');
    });

    it('treat a GPU host whose GPUs are all taken like a host without GPUs', () => {
      const hosts: SchedulerHost[] = [
        gpuHost('a-free-gpus', [0, 1, 2, 3, 4, 5, 6]),
        gpuHost('b-all-taken', [0, 1, 2, 3, 4, 5, 6, 7], { usedCpuCores: 40 }),
      ];
      expect(chosen(hosts, { gpuCount: 0, cpuCores: 4 })).toBe('b-all-taken');
    });

    it('otherwise pick the GPU host they strand the fewest GPUs on', () => {
      // 40 cores on "a" would leave 8 cores for 3 free GPUs; on "b" 56 free cores stay for 1 free GPU.
      const hosts: SchedulerHost[] = [
        gpuHost('a-three-free', [0, 1, 2, 3, 4], { usedCpuCores: 48 }),
        gpuHost('b-one-free', [0, 1, 2, 3, 4, 5, 6], { usedCpuCores: 0 }),
      ];
      expect(chosen(hosts, { gpuCount: 0, cpuCores: 40 })).toBe('b-one-free');
    });

    it('pack tightly among hosts without free GPUs', () => {
      const hosts: SchedulerHost[] = [
        makeHost('a-roomy', { cpuCores: 128 }),
        makeHost('b-snug', { cpuCores: 128, usedCpuCores: 120 }),
      ];
      expect(chosen(hosts, { gpuCount: 0, cpuCores: 8 })).toBe('b-snug');
    });
  });

  it('breaks exact ties by name, then id', () => {
    const hosts: SchedulerHost[] = [gpuHost('id-b', [], { name: 'same' }), gpuHost('id-a', [], { name: 'same' })];
    expect(chosen(hosts, { gpuCount: 1 })).toBe('id-a');
    const named: SchedulerHost[] = [gpuHost('id-1', [], { name: 'zeta' }), gpuHost('id-2', [], { name: 'alpha' })];
    expect(chosen(named, { gpuCount: 1 })).toBe('id-2');
  });

  it('returns null when no host fits', () => {
    expect(chosen([gpuHost('a', [], { state: 'draining' }), makeHost('cpu')], { gpuCount: 1 })).toBeUndefined();
  });

  it('is the same decision whatever the input order', () => {
    const hosts: SchedulerHost[] = [
      gpuHost('a', [0]),
      gpuHost('b', [0, 1]),
      gpuHost('c', [0, 1], { name: 'b' }),
      makeHost('d', { gpus: makeGpus('d', 'h100-80gb', 2) }),
    ];
    const forward: Placement | null = fragAwareBinpackPolicy.choose(hosts, makeRequest({ gpuCount: 2 }), noRandom);
    const backward: Placement | null = fragAwareBinpackPolicy.choose([...hosts].reverse(), makeRequest({ gpuCount: 2 }), noRandom);
    expect(forward).toEqual(backward);
  });
});

describe('createFragAwareBinpackPolicy', () => {
  it('applies the fed share it is given', () => {
    // 40 of "a"'s 96 cores leave 56 for 7 GPUs: 8 per GPU, enough at share 0.5 (6), not at 1.0 (12).
    const hosts: SchedulerHost[] = [
      gpuHost('a-whole'),
      makeHost('b-cpu-rich', { cpuCores: 512, memoryMib: 4096 * 1024, gpus: makeGpus('b-cpu-rich', 'h100-80gb', 8) }),
    ];
    const req = makeRequest({ gpuCount: 1, cpuCores: 40 });
    expect(createFragAwareBinpackPolicy(0.5).choose(hosts, req, noRandom)?.hostId).toBe('a-whole');
    expect(createFragAwareBinpackPolicy(1).choose(hosts, req, noRandom)?.hostId).toBe('b-cpu-rich');
  });

  it.each([0, -0.5, 1.5, Number.NaN])('rejects a fed share of %p', (share: number) => {
    expect(() => createFragAwareBinpackPolicy(share)).toThrow(RangeError);
  });
});

describe('strandedGpus', () => {
  const host: SchedulerHost = gpuHost('h');

  it('counts free GPUs beyond what the free CPU and memory can feed', () => {
    const cpuShare: number = 12 * FED_GPU_SHARE;
    expect(strandedGpus(host, 8, 96, 768 * 1024)).toBe(0);
    expect(strandedGpus(host, 4, 2 * cpuShare, 768 * 1024)).toBe(2);
    expect(strandedGpus(host, 4, 96, 96 * 1024 * FED_GPU_SHARE)).toBe(3);
    expect(strandedGpus(host, 0, 0, 0)).toBe(0);
  });

  it('is zero for hosts without GPUs', () => {
    expect(strandedGpus(makeHost('cpu'), 0, 10, 10)).toBe(0);
  });

  it('takes the fed share as a parameter', () => {
    expect(strandedGpus(host, 4, 24, 768 * 1024, 0.5)).toBe(0);
    expect(strandedGpus(host, 4, 24, 768 * 1024, 1)).toBe(2);
  });
});
