import { SchedulerHost } from '../scheduler.types';
import { makeGpus, makeHost, makeRequest } from '../testing/host.factory';
import { firstFitPolicy } from './first-fit.policy';

describe('firstFitPolicy', () => {
  const never = (): number => {
    throw new Error('first-fit must not draw random numbers');
  };

  it('takes the first fitting host in input order, not the tightest', () => {
    const hosts: SchedulerHost[] = [
      makeHost('z-small', { cpuCores: 2 }),
      makeHost('y-big', { gpus: makeGpus('y-big', 'l4-24gb', 8) }),
      makeHost('a-tight', { gpus: makeGpus('a-tight', 'l4-24gb', 1) }),
    ];
    expect(firstFitPolicy.choose(hosts, makeRequest({ cpuCores: 4, gpuCount: 1 }), never)).toEqual({
      hostId: 'y-big',
      gpuIds: ['y-big-gpu0'],
      claims: [],
    });
  });

  it('returns null when no host fits', () => {
    expect(firstFitPolicy.choose([makeHost('cpu')], makeRequest({ gpuCount: 1 }), never)).toBeNull();
    expect(firstFitPolicy.choose([], makeRequest({ gpuCount: 0 }), never)).toBeNull();
  });
});

describe('firstFitPolicy with fractional requests', () => {
  it('takes the first host with a fitting GPU, and its first fitting GPU', () => {
    const vgpu = (id: string, used: number) =>
      makeHost(id, { gpus: [0, 1].map((index: number) => ({ id: `${id}-gpu${index}`, index, model: 't4-16gb', free: index === 0 ? used === 0 : true, sharingMode: 'vgpu' as const, usedSlots: index === 0 ? used : 0, vgpuProfile: index === 0 && used !== 0 ? '1/2' : null })) });
    const hosts: SchedulerHost[] = [makeHost('a-whole', { gpus: makeGpus('a-whole', 't4-16gb', 2) }), vgpu('b', 0b01), vgpu('c', 0)];
    expect(firstFitPolicy.choose(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/2' }), () => 0)).toEqual({
      hostId: 'b',
      gpuIds: [],
      claims: [{ gpuId: 'b-gpu0', profile: '1/2', slots: [1] }],
    });
    expect(firstFitPolicy.choose(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/4' }), () => 0)?.claims).toEqual([{ gpuId: 'b-gpu1', profile: '1/4', slots: [0] }]);
  });
});
