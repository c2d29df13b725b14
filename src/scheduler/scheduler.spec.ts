import { DEFAULT_POLICY, getPolicy, isPolicyName, POLICIES, schedule } from './scheduler';
import { PlacementPolicy, PlacementRequest, PolicyName, SchedulerHost } from './scheduler.types';
import { makeGpus, makeHost, makeRequest } from './testing/host.factory';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach((child: unknown) => deepFreeze(child));
    Object.freeze(value);
  }
  return value;
}

describe('schedule', () => {
  const hosts: SchedulerHost[] = deepFreeze([
    makeHost('cpu-1'),
    makeHost('gpu-1', { gpus: makeGpus('gpu-1', 'l40s-48gb', 4, [0]) }),
    makeHost('gpu-2', { gpus: makeGpus('gpu-2', 'l40s-48gb', 4) }),
  ]);

  it('uses the default policy and does not touch the hosts', () => {
    expect(schedule(hosts, makeRequest({ gpuCount: 1 }))).toEqual(
      DEFAULT_POLICY.choose(hosts, makeRequest({ gpuCount: 1 }), Math.random),
    );
    expect(schedule(hosts, makeRequest({ gpuCount: 4 }))).toEqual({
      hostId: 'gpu-2',
      gpuIds: ['gpu-2-gpu0', 'gpu-2-gpu1', 'gpu-2-gpu2', 'gpu-2-gpu3'],
      claims: [],
    });
  });

  it('passes the policy and the random source through', () => {
    const random = jest.fn(() => 0.99);
    expect(schedule(hosts, makeRequest({ gpuCount: 1 }), getPolicy('random-fit'), random)?.hostId).toBe('gpu-2');
    expect(random).toHaveBeenCalledTimes(1);
  });

  it('accepts a profile instead of a GPU count', () => {
    expect(schedule(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/2' }))).toBeNull();
    expect(schedule(hosts, makeRequest({ gpuCount: 0, gpuProfile: '3g.71gb' }))).toBeNull();
  });

  it('returns null when nothing fits', () => {
    expect(schedule(hosts, makeRequest({ gpuCount: 5 }))).toBeNull();
    expect(schedule([], makeRequest({ gpuCount: 0 }))).toBeNull();
  });

  it.each<[string, Partial<PlacementRequest>]>([
    ['negative CPU', { cpuCores: -1 }],
    ['NaN memory', { memoryMib: Number.NaN }],
    ['infinite disk', { diskGib: Number.POSITIVE_INFINITY }],
    ['a fractional GPU count', { gpuCount: 0.5 }],
    ['a negative GPU count', { gpuCount: -1 }],
    ['both a GPU count and a profile', { gpuCount: 1, gpuProfile: '1/2' }],
    ['an unknown profile', { gpuCount: 0, gpuProfile: '1/3' }],
    ['an empty profile', { gpuCount: 0, gpuProfile: '' }],
  ])('rejects a request with %s', (_label: string, overrides: Partial<PlacementRequest>) => {
    expect(() => schedule(hosts, makeRequest(overrides))).toThrow(RangeError);
  });
});

describe('policies', () => {
  it('register each policy under its own name', () => {
    for (const [name, policy] of Object.entries(POLICIES)) {
      expect(policy.name).toBe(name);
      expect(getPolicy(name)).toBe(policy);
      expect(isPolicyName(name)).toBe(true);
    }
    expect(Object.keys(POLICIES).sort()).toEqual<PolicyName[]>(['best-fit', 'first-fit', 'frag-aware-binpack', 'random-fit']);
  });

  it('make the fragmentation-aware policy the default', () => {
    const policy: PlacementPolicy = DEFAULT_POLICY;
    expect(policy.name).toBe('frag-aware-binpack');
  });

  it('reject unknown names, including inherited properties', () => {
    expect(() => getPolicy('worst-fit')).toThrow(/unknown placement policy "worst-fit"/);
    expect(isPolicyName('toString')).toBe(false);
    expect(() => getPolicy('constructor')).toThrow(RangeError);
  });
});
