import { SchedulerHost } from '../scheduler.types';
import { makeGpus, makeHost, makeRequest } from '../testing/host.factory';
import { bestFitPolicy } from './best-fit.policy';

const noRandom = (): number => 0;

describe('bestFitPolicy', () => {
  it('leaves the fewest free GPUs first', () => {
    const hosts: SchedulerHost[] = [
      makeHost('eight', { gpus: makeGpus('eight', 'a100-80gb', 8) }),
      makeHost('two-left', { gpus: makeGpus('two-left', 'a100-80gb', 8, [0, 1, 2, 3, 4, 5]) }),
      makeHost('four', { gpus: makeGpus('four', 'a100-80gb', 4) }),
    ];
    expect(bestFitPolicy.choose(hosts, makeRequest({ gpuCount: 2 }), noRandom)).toEqual({
      hostId: 'two-left',
      gpuIds: ['two-left-gpu6', 'two-left-gpu7'],
      claims: [],
    });
  });

  it('then the least CPU, then the least memory', () => {
    const hosts: SchedulerHost[] = [
      makeHost('roomy', { cpuCores: 64 }),
      makeHost('tight-cpu', { cpuCores: 64, usedCpuCores: 56, memoryMib: 999_999 }),
      makeHost('tight-cpu-mem', { cpuCores: 64, usedCpuCores: 56, memoryMib: 20 * 1024 }),
    ];
    expect(bestFitPolicy.choose(hosts, makeRequest({ gpuCount: 0, cpuCores: 4 }), noRandom)?.hostId).toBe(
      'tight-cpu-mem',
    );
  });

  it('breaks exact ties by host name, then id', () => {
    const hosts: SchedulerHost[] = [makeHost('id-2', { name: 'beta' }), makeHost('id-1', { name: 'alpha' })];
    expect(bestFitPolicy.choose(hosts, makeRequest({ gpuCount: 0 }), noRandom)?.hostId).toBe('id-1');
    const sameName: SchedulerHost[] = [makeHost('id-2', { name: 'same' }), makeHost('id-1', { name: 'same' })];
    expect(bestFitPolicy.choose(sameName, makeRequest({ gpuCount: 0 }), noRandom)?.hostId).toBe('id-1');
  });

  it('skips hosts that do not fit and returns null when none does', () => {
    const hosts: SchedulerHost[] = [makeHost('down', { state: 'down', gpus: makeGpus('down', 'l4-24gb', 1) })];
    expect(bestFitPolicy.choose(hosts, makeRequest({ gpuCount: 1 }), noRandom)).toBeNull();
  });
});

describe('bestFitPolicy with fractional requests', () => {
  it('takes the host with the least free GPU capacity, and there the GPU with the least room for the profile', () => {
    const vgpu = (id: string, used: number[]) =>
      makeHost(id, { gpus: used.map((mask: number, index: number) => ({ id: `${id}-gpu${index}`, index, model: 't4-16gb', free: mask === 0, sharingMode: 'vgpu' as const, usedSlots: mask, vgpuProfile: mask === 0 ? null : '1/4' })) });
    const hosts: SchedulerHost[] = [vgpu('a-roomy', [0, 0b0001]), vgpu('b-tight', [0b0001, 0b0111])];
    expect(bestFitPolicy.choose(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/4' }), noRandom)).toEqual({
      hostId: 'b-tight',
      gpuIds: [],
      claims: [{ gpuId: 'b-tight-gpu1', profile: '1/4', slots: [3] }],
    });
  });
});
