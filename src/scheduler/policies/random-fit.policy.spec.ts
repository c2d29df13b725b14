import { seededRandom } from '../../../libs/sdk/src/seeded-random';
import { Placement, SchedulerHost } from '../scheduler.types';
import { makeGpus, makeHost, makeRequest } from '../testing/host.factory';
import { randomFitPolicy } from './random-fit.policy';

describe('randomFitPolicy', () => {
  const hosts: SchedulerHost[] = [
    makeHost('a', { gpus: makeGpus('a', 't4-16gb', 2) }),
    makeHost('b', { state: 'down', gpus: makeGpus('b', 't4-16gb', 2) }),
    makeHost('c', { gpus: makeGpus('c', 't4-16gb', 2) }),
    makeHost('d'),
    makeHost('e', { gpus: makeGpus('e', 't4-16gb', 2) }),
  ];

  it('maps the random draw onto the fitting hosts in input order', () => {
    const req = makeRequest({ gpuCount: 1 });
    expect(randomFitPolicy.choose(hosts, req, () => 0)?.hostId).toBe('a');
    expect(randomFitPolicy.choose(hosts, req, () => 0.5)?.hostId).toBe('c');
    expect(randomFitPolicy.choose(hosts, req, () => 0.99)?.hostId).toBe('e');
  });

  it('stays in range when the source returns 1', () => {
    expect(randomFitPolicy.choose(hosts, makeRequest({ gpuCount: 1 }), () => 1)?.hostId).toBe('e');
  });

  it('draws each fitting host about equally often and never a non-fitting one', () => {
    const random: () => number = seededRandom(7);
    const counts: Map<string, number> = new Map<string, number>();
    for (let i: number = 0; i < 3000; i++) {
      const placement: Placement | null = randomFitPolicy.choose(hosts, makeRequest({ gpuCount: 1 }), random);
      counts.set(placement!.hostId, (counts.get(placement!.hostId) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(['a', 'c', 'e']);
    for (const count of counts.values()) expect(count).toBeGreaterThan(900);
  });

  it('returns null without drawing when nothing fits', () => {
    const random = jest.fn(() => 0.5);
    expect(randomFitPolicy.choose(hosts, makeRequest({ gpuCount: 3 }), random)).toBeNull();
    expect(random).not.toHaveBeenCalled();
  });
});

describe('randomFitPolicy with fractional requests', () => {
  it('draws among the hosts with a fitting GPU only', () => {
    const mig = (id: string) =>
      makeHost(id, { gpus: [{ id: `${id}-gpu0`, index: 0, model: 'h200-141gb', free: true, sharingMode: 'mig' as const, usedSlots: 0, vgpuProfile: null }] });
    const hosts: SchedulerHost[] = [makeHost('a', { gpus: makeGpus('a', 'h200-141gb', 1) }), mig('b'), mig('c')];
    const req = makeRequest({ gpuCount: 0, gpuProfile: '7g.141gb' });
    expect(randomFitPolicy.choose(hosts, req, () => 0)?.hostId).toBe('b');
    expect(randomFitPolicy.choose(hosts, req, () => 0.99)).toEqual({ hostId: 'c', gpuIds: [], claims: [{ gpuId: 'c-gpu0', profile: '7g.141gb', slots: [0, 1, 2, 3, 4, 5, 6, 7] }] });
  });
});
