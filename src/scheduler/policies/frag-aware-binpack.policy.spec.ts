import { Placement, PlacementRequest, SchedulerGpu, SchedulerHost } from '../scheduler.types';
import { makeGpus, makeHost, makeRequest } from '../testing/host.factory';
import { WorkloadMix, workloadMixOf } from '../workload-mix';
import { fragAwareBinpackPolicy } from './frag-aware-binpack.policy';

const noRandom = (): number => 0;

function chosen(hosts: SchedulerHost[], req: PlacementRequest, workload?: WorkloadMix): Placement | null {
  return fragAwareBinpackPolicy.choose(hosts, req, noRandom, workload ? { workload } : {});
}

/** An 8-GPU host with 96 cores and 768 GiB; `taken` lists GPUs already bound. */
function gpuHost(id: string, model: string = 'h100-80gb', taken: number[] = [], overrides: Partial<SchedulerHost> = {}): SchedulerHost {
  return makeHost(id, { cpuCores: 96, memoryMib: 768 * 1024, gpus: makeGpus(id, model, 8, taken), ...overrides });
}

function vgpuHost(id: string, held: { profile: string; used: number }[], model: string = 't4-16gb'): SchedulerHost {
  const gpus: SchedulerGpu[] = held.map(({ profile, used }, index: number): SchedulerGpu => ({
    id: `${id}-gpu${index}`,
    index,
    model,
    free: used === 0,
    sharingMode: 'vgpu',
    usedSlots: used,
    vgpuProfile: used === 0 ? null : profile,
  }));
  return makeHost(id, { cpuCores: 64, memoryMib: 256 * 1024, gpus });
}

function times(count: number, alternatives: PlacementRequest[]): PlacementRequest[][] {
  return Array.from({ length: count }, () => alternatives);
}

describe('fragAwareBinpackPolicy', () => {
  it('puts a CPU-only VM on a host without GPUs rather than take CPU a free GPU needs', () => {
    // Six free GPUs at 12 cores each need 72 cores; the GPU host has 70 left.
    const hosts: SchedulerHost[] = [gpuHost('a-gpu', 'h100-80gb', [0, 1], { usedCpuCores: 26 }), makeHost('b-cpu', { cpuCores: 64, usedCpuCores: 4 })];
    const mix: WorkloadMix = workloadMixOf([...times(9, [makeRequest({ gpuCount: 1, cpuCores: 12 })]), [makeRequest({ gpuCount: 0, cpuCores: 16 })]]);
    expect(chosen(hosts, makeRequest({ gpuCount: 0, cpuCores: 8 }), mix)?.hostId).toBe('b-cpu');
    // With the CPU-only host full, the GPU host whose GPUs do not need the CPU is taken.
    const gpuHostsOnly: SchedulerHost[] = [hosts[0], gpuHost('c-spare', 'h100-80gb', [0, 1], { cpuCores: 128 }), { ...hosts[1], usedCpuCores: 64 }];
    expect(chosen(gpuHostsOnly, makeRequest({ gpuCount: 0, cpuCores: 8 }), mix)?.hostId).toBe('c-spare');
  });

  it('puts a vGPU on a GPU that already holds its size, even on another host, rather than open an empty GPU', () => {
    const hosts: SchedulerHost[] = [
      vgpuHost('a-empty', [{ profile: '1/4', used: 0 }, { profile: '1/4', used: 0 }]),
      vgpuHost('b-quarter', [{ profile: '1/4', used: 0b0011 }, { profile: '1/2', used: 0b01 }]),
    ];
    const mix: WorkloadMix = workloadMixOf([...times(5, [makeRequest({ gpuCount: 0, gpuProfile: '1/4' })]), ...times(5, [makeRequest({ gpuCount: 0, gpuProfile: '1/2' })])]);
    expect(chosen(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/4' }), mix)).toEqual<Placement>({
      hostId: 'b-quarter',
      gpuIds: [],
      claims: [{ gpuId: 'b-quarter-gpu0', profile: '1/4', slots: [2] }],
    });
  });

  it('leaves a model that pinned VMs need to them: a VM that accepts any model goes elsewhere', () => {
    const hosts: SchedulerHost[] = [gpuHost('a-t4', 't4-16gb', [0, 1, 2]), gpuHost('b-l4', 'l4-24gb', [0, 1, 2])];
    const mix: WorkloadMix = workloadMixOf([
      ...times(6, [makeRequest({ gpuCount: 1, gpuModel: 't4-16gb' })]),
      ...times(4, [makeRequest({ gpuCount: 1 })]),
    ]);
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }), mix)?.hostId).toBe('b-l4');
    // Without pinned VMs in the mix, the two hosts are alike and the name decides.
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }), workloadMixOf(times(10, [makeRequest({ gpuCount: 1 })])))?.hostId).toBe('a-t4');
  });

  it('starts a new host for a 1-GPU VM when 8-GPU VMs are a large part of the mix: one would take it for one VM', () => {
    const hosts: SchedulerHost[] = [gpuHost('a-three-free', 'h100-80gb', [0, 1, 2, 3, 4]), gpuHost('b-whole'), gpuHost('c-whole'), gpuHost('d-whole')];
    const mix: WorkloadMix = workloadMixOf([
      ...times(8, [makeRequest({ gpuCount: 1, cpuCores: 8 })]),
      ...times(2, [makeRequest({ gpuCount: 8, cpuCores: 64 })]),
    ]);
    expect(chosen(hosts, makeRequest({ gpuCount: 1, cpuCores: 8 }), mix)?.hostId).toMatch(/whole/);
  });

  it('keeps whole hosts for a multi-GPU size the mix asks for now and then', () => {
    const hosts: SchedulerHost[] = [gpuHost('a-two-free', 'h100-80gb', [0, 1, 2, 3, 4, 5]), gpuHost('b-whole'), gpuHost('c-whole')];
    const mix: WorkloadMix = workloadMixOf([
      ...times(99, [makeRequest({ gpuCount: 1, cpuCores: 8 })]),
      ...times(1, [makeRequest({ gpuCount: 8, cpuCores: 64 })]),
    ]);
    expect(chosen(hosts, makeRequest({ gpuCount: 1, cpuCores: 8 }), mix)?.hostId).toBe('a-two-free');
  });

  it('without a workload, lets the request stand for it: a 1-GPU VM fills the fullest host', () => {
    const hosts: SchedulerHost[] = [gpuHost('a-whole'), gpuHost('b-one-free', 'h100-80gb', [0, 1, 2, 3, 4, 5, 6]), gpuHost('c-three-free', 'h100-80gb', [0, 1, 2, 3, 4])];
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))).toEqual<Placement>({ hostId: 'b-one-free', gpuIds: ['b-one-free-gpu7'], claims: [] });
  });

  it('places MIG instances on a valid placement of the GPU already partitioned', () => {
    const mig = (id: string, used: number): SchedulerHost =>
      makeHost(id, {
        gpus: [{ id: `${id}-gpu0`, index: 0, model: 'h200-141gb', free: used === 0, sharingMode: 'mig', usedSlots: used, vgpuProfile: null }],
      });
    const hosts: SchedulerHost[] = [mig('a-empty', 0), mig('b-half', 0b1111)];
    const placement: Placement | null = chosen(hosts, makeRequest({ gpuCount: 0, gpuProfile: '3g.71gb' }));
    expect(placement).toEqual<Placement>({ hostId: 'b-half', gpuIds: [], claims: [{ gpuId: 'b-half-gpu0', profile: '3g.71gb', slots: [4, 5, 6, 7] }] });
  });

  it('refuses what no host can take and ignores hosts that are not active', () => {
    const hosts: SchedulerHost[] = [gpuHost('a', 'h100-80gb', [], { state: 'draining' }), makeHost('b')];
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))).toBeNull();
    expect(chosen(hosts, makeRequest({ gpuCount: 0, gpuProfile: '1/2' }))).toBeNull();
  });

  it('is the same decision whatever the input order, and the same when hosts carry versions', () => {
    const build = (): SchedulerHost[] => [
      gpuHost('a', 'h100-80gb', [0]),
      gpuHost('b', 'h100-80gb', [0, 1]),
      gpuHost('c', 'h100-80gb', [0, 1], { name: 'b' }),
      makeHost('d', { gpus: makeGpus('d', 'h100-80gb', 2) }),
    ];
    const mix: WorkloadMix = workloadMixOf([...times(3, [makeRequest({ gpuCount: 2 })]), ...times(3, [makeRequest({ gpuCount: 1 })])]);
    const forward: Placement | null = chosen(build(), makeRequest({ gpuCount: 2 }), mix);
    expect(chosen(build().reverse(), makeRequest({ gpuCount: 2 }), mix)).toEqual(forward);
    const versioned: SchedulerHost[] = build().map((host: SchedulerHost) => ({ ...host, version: 1 }));
    expect(chosen(versioned, makeRequest({ gpuCount: 2 }), mix)).toEqual(forward);
    expect(chosen(versioned, makeRequest({ gpuCount: 2 }), mix)).toEqual(forward);
  });

  it('sees a change to a host whose version changes, and only then', () => {
    const hosts: SchedulerHost[] = [{ ...gpuHost('a', 'h100-80gb', [0, 1, 2, 3, 4, 5, 6]), version: 1 }, { ...gpuHost('b', 'h100-80gb', [0, 1, 2, 3, 4]), version: 1 }];
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))?.hostId).toBe('a');
    hosts[0].gpus[7].free = false;
    hosts[0].version = 2;
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))?.hostId).toBe('b');
  });

  it('among hosts in one state takes the first by name, and sees a drain or a rename once the version changes', () => {
    // Same shape, same usage: one candidate stands for all of them. Names run against positions.
    const hosts: SchedulerHost[] = ['h-3', 'h-1', 'h-2'].map((name: string, i: number) => ({ ...gpuHost(`id-${i}`, 'h100-80gb', [], { name }), version: 1 }));
    const req: PlacementRequest = makeRequest({ gpuCount: 1 });
    expect(chosen(hosts, req)?.hostId).toBe('id-1');
    hosts[1].state = 'draining';
    hosts[1].version = 2;
    expect(chosen(hosts, req)?.hostId).toBe('id-2');
    hosts[0].name = 'h-0';
    hosts[0].version = 2;
    expect(chosen(hosts, req)?.hostId).toBe('id-0');
    // Without versions nothing is remembered between decisions.
    const fresh: SchedulerHost[] = hosts.map(({ version: _version, ...host }) => ({ ...host, name: host.id === 'id-2' ? 'a' : host.name }));
    expect(chosen(fresh, req)?.hostId).toBe('id-2');
  });

  it('keeps deciding right in a fleet where some hosts carry versions and some do not', () => {
    const hosts: SchedulerHost[] = [
      { ...gpuHost('a', 'h100-80gb', [0, 1, 2, 3, 4, 5]), version: 1 },
      gpuHost('b', 'h100-80gb', [0, 1, 2, 3, 4, 5, 6]),
      { ...gpuHost('c', 'h100-80gb', [0, 1, 2, 3, 4]), version: 1 },
    ];
    // The fullest host that still fits a 1-GPU VM is b, which has no version and is read afresh each time.
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))?.hostId).toBe('b');
    hosts[1].gpus[7].free = false;
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))?.hostId).toBe('a');
    expect(chosen(hosts, makeRequest({ gpuCount: 3 }))?.hostId).toBe('c');
  });

  it('still groups hosts correctly after so many states that the state ids start over', () => {
    const hosts: SchedulerHost[] = [
      { ...gpuHost('b-host', 'h100-80gb', [0]), version: 0 },
      { ...gpuHost('a-host', 'h100-80gb', [0], { usedCpuCores: 50 }), version: 0 },
    ];
    // 60 cores fit b-host while it uses at most 36, and never a-host.
    const req: PlacementRequest = makeRequest({ gpuCount: 1, cpuCores: 60 });
    const wrong: string[] = [];
    // Each new usage of b-host is a state never seen before; 70,000 of them pass the 65,536 ids kept.
    for (let step: number = 1; step <= 70_000; step++) {
      hosts[0].usedCpuCores = (step % 90) + step / 1_000_000;
      hosts[0].version = step;
      const expected: string | null = hosts[0].usedCpuCores + 60 <= 96 ? 'b-host' : null;
      const got: string | null = chosen(hosts, req)?.hostId ?? null;
      if (got !== expected) wrong.push(`step ${step}: ${got} instead of ${expected}`);
    }
    expect(wrong).toEqual([]);
    // Both hosts in one state again: the first by name stands for the pair.
    hosts[0].usedCpuCores = 50;
    hosts[0].version = -1;
    expect(chosen(hosts, makeRequest({ gpuCount: 1 }))?.hostId).toBe('a-host');
  });

  it('decides over hosts without versions from them alone, after a decision over other hosts with versions', () => {
    const versioned: SchedulerHost[] = [{ ...gpuHost('old-a'), version: 1 }, { ...gpuHost('old-b'), version: 1 }];
    expect(chosen(versioned, makeRequest({ gpuCount: 1 }))?.hostId).toBe('old-a');
    const fresh: SchedulerHost[] = [gpuHost('new-a', 'h100-80gb', [0, 1, 2, 3, 4, 5, 6, 7]), gpuHost('new-b')];
    expect(chosen(fresh, makeRequest({ gpuCount: 1 }))?.hostId).toBe('new-b');
    expect(chosen([fresh[0]], makeRequest({ gpuCount: 1 }))).toBeNull();
  });
});
