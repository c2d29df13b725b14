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
    });
  });

  it('returns null when no host fits', () => {
    expect(firstFitPolicy.choose([makeHost('cpu')], makeRequest({ gpuCount: 1 }), never)).toBeNull();
    expect(firstFitPolicy.choose([], makeRequest({ gpuCount: 0 }), never)).toBeNull();
  });
});
