import fc from 'fast-check';
import { seededRandom } from '../../libs/sdk/src/seeded-random';
import { applyPlacement, createFleetLedger, FleetLedger, releasePlacement } from './fleet-ledger';
import { POLICIES, schedule } from './scheduler';
import { GpuSharingMode, milliGpuOf } from '../fleet/domain/gpu-profiles';
import { largestWholeGpuCount, profileCapacity } from './gpu-slots';
import { HostState, Placement, PlacementRequest, PolicyName, SchedulerGpu, SchedulerHost } from './scheduler.types';
import { createWorkloadTally, WorkloadTally } from './workload-mix';

const MODELS: string[] = ['a-8gb', 'b-16gb', 'c-24gb'];
const POLICY_NAMES: PolicyName[] = Object.keys(POLICIES) as PolicyName[];

interface HostSpec {
  state: HostState;
  region: string;
  cpuCores: number;
  memoryGib: number;
  diskGib: number;
  gpuGroups: { model: string; count: number }[];
  reverseGpus: boolean;
}

type Operation = { kind: 'create'; req: PlacementRequest } | { kind: 'delete'; pick: number };

const hostSpec: fc.Arbitrary<HostSpec> = fc.record({
  state: fc.constantFrom<HostState>('active', 'active', 'active', 'active', 'draining', 'down'),
  region: fc.constantFrom('r1', 'r2'),
  cpuCores: fc.integer({ min: 1, max: 64 }),
  memoryGib: fc.integer({ min: 1, max: 64 }),
  diskGib: fc.integer({ min: 1, max: 500 }),
  gpuGroups: fc.array(fc.record({ model: fc.constantFrom(...MODELS), count: fc.integer({ min: 1, max: 8 }) }), {
    maxLength: 2,
  }),
  reverseGpus: fc.boolean(),
});

const request: fc.Arbitrary<PlacementRequest> = fc.record({
  cpuCores: fc.integer({ min: 0, max: 32 }),
  memoryMib: fc.integer({ min: 0, max: 32 * 1024 }),
  diskGib: fc.integer({ min: 0, max: 200 }),
  gpuCount: fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 8 })),
  gpuModel: fc.constantFrom<string | null>(null, null, ...MODELS, 'missing-8gb'),
  region: fc.constantFrom<string | null>(null, null, 'r1', 'r2'),
});

const operation: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 3, arbitrary: request.map((req: PlacementRequest): Operation => ({ kind: 'create', req })) },
  { weight: 1, arbitrary: fc.nat().map((pick: number): Operation => ({ kind: 'delete', pick })) },
);

function buildFleet(specs: HostSpec[]): SchedulerHost[] {
  return specs.map((spec: HostSpec, h: number): SchedulerHost => {
    const id: string = `h${h}`;
    const gpus: SchedulerGpu[] = [];
    for (const group of spec.gpuGroups) {
      for (let i: number = 0; i < group.count; i++) {
        gpus.push({ id: `${id}-gpu${gpus.length}`, index: gpus.length, model: group.model, free: true });
      }
    }
    if (spec.reverseGpus) gpus.reverse();
    return {
      id,
      name: `host-${h % 3}`,
      region: spec.region,
      state: spec.state,
      cpuCores: spec.cpuCores,
      memoryMib: spec.memoryGib * 1024,
      diskGib: spec.diskGib,
      usedCpuCores: 0,
      usedMemoryMib: 0,
      usedDiskGib: 0,
      gpus,
    };
  });
}

/** An oracle written independently of host-filter: can any host take the request? */
function someHostFits(hosts: readonly SchedulerHost[], req: PlacementRequest): boolean {
  return hosts.some((host: SchedulerHost) => {
    if (host.state !== 'active' || (req.region && host.region !== req.region)) return false;
    if (host.cpuCores - host.usedCpuCores < req.cpuCores) return false;
    if (host.memoryMib - host.usedMemoryMib < req.memoryMib) return false;
    if (host.diskGib - host.usedDiskGib < req.diskGib) return false;
    if (req.gpuCount === 0) return true;
    const freeByModel: Map<string, number> = new Map<string, number>();
    for (const gpu of host.gpus) {
      if (gpu.free) freeByModel.set(gpu.model, (freeByModel.get(gpu.model) ?? 0) + 1);
    }
    return [...freeByModel].some(
      ([model, free]: [string, number]) => free >= req.gpuCount && (!req.gpuModel || model === req.gpuModel),
    );
  });
}

function expectValidPlacement(hosts: readonly SchedulerHost[], req: PlacementRequest, placement: Placement): void {
  const host: SchedulerHost | undefined = hosts.find((candidate: SchedulerHost) => candidate.id === placement.hostId);
  expect(host).toBeDefined();
  const chosen: SchedulerHost = host as SchedulerHost;
  expect(chosen.state).toBe('active');
  if (req.region) expect(chosen.region).toBe(req.region);
  expect(chosen.usedCpuCores + req.cpuCores).toBeLessThanOrEqual(chosen.cpuCores);
  expect(chosen.usedMemoryMib + req.memoryMib).toBeLessThanOrEqual(chosen.memoryMib);
  expect(chosen.usedDiskGib + req.diskGib).toBeLessThanOrEqual(chosen.diskGib);
  expect(new Set(placement.gpuIds).size).toBe(req.gpuCount);
  const gpus: SchedulerGpu[] = placement.gpuIds.map(
    (id: string) => chosen.gpus.find((gpu: SchedulerGpu) => gpu.id === id) as SchedulerGpu,
  );
  expect(gpus.every((gpu: SchedulerGpu | undefined) => gpu !== undefined && gpu.free)).toBe(true);
  expect(new Set(gpus.map((gpu: SchedulerGpu) => gpu.model)).size).toBeLessThanOrEqual(1);
  if (req.gpuModel && gpus.length > 0) expect(gpus[0].model).toBe(req.gpuModel);
  // The lowest free indexes of the model are taken.
  if (gpus.length > 0) {
    const highestTaken: number = Math.max(...gpus.map((gpu: SchedulerGpu) => gpu.index));
    const skipped: SchedulerGpu[] = chosen.gpus.filter(
      (gpu: SchedulerGpu) => gpu.free && gpu.model === gpus[0].model && gpu.index < highestTaken && !placement.gpuIds.includes(gpu.id),
    );
    expect(skipped).toEqual([]);
  }
}

function expectConsistentFleet(hosts: readonly SchedulerHost[], live: readonly { placement: Placement; req: PlacementRequest }[]): void {
  const owner: Map<string, number> = new Map<string, number>();
  live.forEach(({ placement }: { placement: Placement }, vm: number) => {
    for (const id of placement.gpuIds) {
      expect(owner.has(id)).toBe(false);
      owner.set(id, vm);
    }
  });
  for (const host of hosts) {
    const onHost: PlacementRequest[] = live.filter((vm) => vm.placement.hostId === host.id).map((vm) => vm.req);
    const sum = (field: 'cpuCores' | 'memoryMib' | 'diskGib'): number =>
      onHost.reduce((total: number, req: PlacementRequest) => total + req[field], 0);
    expect([host.usedCpuCores, host.usedMemoryMib, host.usedDiskGib]).toEqual([sum('cpuCores'), sum('memoryMib'), sum('diskGib')]);
    expect(host.usedCpuCores).toBeLessThanOrEqual(host.cpuCores);
    expect(host.usedMemoryMib).toBeLessThanOrEqual(host.memoryMib);
    expect(host.usedDiskGib).toBeLessThanOrEqual(host.diskGib);
    for (const gpu of host.gpus) expect(gpu.free).toBe(!owner.has(gpu.id));
  }
}

interface LiveVm {
  placement: Placement;
  req: PlacementRequest;
}

/**
 * Applies the operations to the ledger: a create places with `place` and
 * applies the placement (the ledger throws on an invalid one), a delete
 * releases a live VM. `check` runs after every operation; `req` is null
 * after a delete.
 */
function runOperations(
  ledger: FleetLedger,
  operations: readonly Operation[],
  place: (req: PlacementRequest) => Placement | null,
  check: (req: PlacementRequest | null, placement: Placement | null, live: readonly LiveVm[]) => void,
): LiveVm[] {
  const live: LiveVm[] = [];
  for (const op of operations) {
    if (op.kind === 'delete') {
      if (live.length === 0) continue;
      const [vm] = live.splice(op.pick % live.length, 1);
      releasePlacement(ledger, vm.placement, vm.req);
      check(null, null, live);
      continue;
    }
    const placement: Placement | null = place(op.req);
    if (placement !== null) {
      applyPlacement(ledger, placement, op.req);
      live.push({ placement, req: op.req });
    }
    check(op.req, placement, live);
  }
  return live;
}

describe('schedule on random fleets under random creates and deletes', () => {
  it('keeps GPUs and capacity consistent, never refuses a request some host can take, and reuses freed capacity', () => {
    fc.assert(
      fc.property(
        fc.array(hostSpec, { minLength: 1, maxLength: 10 }),
        fc.array(operation, { minLength: 1, maxLength: 50 }),
        fc.constantFrom(...POLICY_NAMES),
        fc.integer(),
        (specs: HostSpec[], operations: Operation[], policyName: PolicyName, seed: number) => {
          const hosts: SchedulerHost[] = buildFleet(specs);
          const empty: SchedulerHost[] = structuredClone(hosts);
          const ledger: FleetLedger = createFleetLedger(hosts);
          const random: () => number = seededRandom(seed);
          const live: LiveVm[] = runOperations(
            ledger,
            operations,
            (req: PlacementRequest) => {
              const placement: Placement | null = schedule(hosts, req, POLICIES[policyName], random);
              if (placement === null) expect(someHostFits(hosts, req)).toBe(false);
              else expectValidPlacement(hosts, req, placement);
              return placement;
            },
            (_req: PlacementRequest | null, _placement: Placement | null, vms: readonly LiveVm[]) => expectConsistentFleet(hosts, vms),
          );

          for (const vm of live.splice(0)) releasePlacement(ledger, vm.placement, vm.req);
          // Everything released: the same fleet, but for the versions the ledger bumped.
          expect(hosts.map(({ version: _version, ...host }) => host)).toEqual(empty);
          for (const op of operations) {
            if (op.kind === 'create' && someHostFits(empty, op.req)) {
              expect(schedule(hosts, op.req, POLICIES[policyName], random)).not.toBeNull();
            }
          }
        },
      ),
      { seed: 20240601, numRuns: 400 },
    );
  });

  it('is deterministic: the same fleet, requests and seed give the same placements', () => {
    fc.assert(
      fc.property(
        fc.array(hostSpec, { minLength: 1, maxLength: 8 }),
        fc.array(request, { minLength: 1, maxLength: 30 }),
        fc.constantFrom(...POLICY_NAMES),
        fc.integer(),
        (specs: HostSpec[], requests: PlacementRequest[], policyName: PolicyName, seed: number) => {
          const run = (): (Placement | null)[] => {
            const hosts: SchedulerHost[] = buildFleet(specs);
            const ledger: FleetLedger = createFleetLedger(hosts);
            const random: () => number = seededRandom(seed);
            return requests.map((req: PlacementRequest) => {
              const placement: Placement | null = schedule(hosts, req, POLICIES[policyName], random);
              if (placement !== null) applyPlacement(ledger, placement, req);
              return placement;
            });
          };
          expect(run()).toEqual(run());
        },
      ),
      { seed: 20240602, numRuns: 200 },
    );
  });
});

/*
 * Fractional GPUs: fleets whose GPUs are in passthrough, vgpu or mig mode,
 * and requests for whole GPUs, vGPU sizes and MIG profiles. The default
 * policy gets the mix of the requests so far, as the replay gives it.
 */

const SHARED_MODELS: { model: string; modes: GpuSharingMode[] }[] = [
  { model: 'h200-141gb', modes: ['passthrough', 'vgpu', 'mig'] },
  { model: 'a100-40gb', modes: ['passthrough', 'mig'] },
  { model: 't4-16gb', modes: ['passthrough', 'vgpu'] },
];
const PROFILE_NAMES: string[] = ['1/8', '1/4', '1/2', '1', '1g.18gb', '1g.18gb+me', '2g.35gb', '3g.71gb', '7g.141gb', '1g.5gb', '3g.20gb'];

interface SharedHostSpec {
  cpuCores: number;
  memoryGib: number;
  gpus: { model: number; mode: number }[];
}

const sharedHostSpec: fc.Arbitrary<SharedHostSpec> = fc.record({
  cpuCores: fc.integer({ min: 1, max: 64 }),
  memoryGib: fc.integer({ min: 1, max: 64 }),
  gpus: fc.array(fc.record({ model: fc.nat(), mode: fc.nat() }), { maxLength: 4 }),
});

const sharedRequest: fc.Arbitrary<PlacementRequest> = fc.oneof(
  fc.record({
    cpuCores: fc.integer({ min: 0, max: 16 }),
    memoryMib: fc.integer({ min: 0, max: 16 * 1024 }),
    diskGib: fc.constant(1),
    gpuCount: fc.constant(0),
    gpuProfile: fc.constantFrom(...PROFILE_NAMES),
    gpuModel: fc.constantFrom<string | null>(null, null, ...SHARED_MODELS.map((m) => m.model)),
  }),
  fc.record({
    cpuCores: fc.integer({ min: 0, max: 16 }),
    memoryMib: fc.integer({ min: 0, max: 16 * 1024 }),
    diskGib: fc.constant(1),
    gpuCount: fc.integer({ min: 0, max: 3 }),
    gpuModel: fc.constantFrom<string | null>(null, null, ...SHARED_MODELS.map((m) => m.model)),
  }),
);

function buildSharedFleet(specs: SharedHostSpec[]): SchedulerHost[] {
  return specs.map((spec: SharedHostSpec, h: number): SchedulerHost => {
    const id: string = `h${h}`;
    return {
      id,
      name: id,
      region: 'r1',
      state: 'active',
      cpuCores: spec.cpuCores,
      memoryMib: spec.memoryGib * 1024,
      diskGib: 1000,
      usedCpuCores: 0,
      usedMemoryMib: 0,
      usedDiskGib: 0,
      gpus: spec.gpus.map(({ model, mode }, i: number): SchedulerGpu => {
        const kind = SHARED_MODELS[model % SHARED_MODELS.length];
        return { id: `${id}-gpu${i}`, index: i, model: kind.model, free: true, sharingMode: kind.modes[mode % kind.modes.length], usedSlots: 0, vgpuProfile: null };
      }),
    };
  });
}

function heldMilli(ledger: FleetLedger, vm: LiveVm): number {
  if (!vm.req.gpuProfile) return vm.req.gpuCount * 1000;
  const gpu: SchedulerGpu = (ledger.gpuById.get(vm.placement.claims[0].gpuId) as { gpu: SchedulerGpu }).gpu;
  return milliGpuOf({ ...vm.req, gpuModel: gpu.model });
}

/** An oracle written from profileCapacity and whole-GPU counts: can any host take the request? */
function someHostTakes(hosts: readonly SchedulerHost[], req: PlacementRequest): boolean {
  return hosts.some((host: SchedulerHost) => {
    if (host.cpuCores - host.usedCpuCores < req.cpuCores || host.memoryMib - host.usedMemoryMib < req.memoryMib) return false;
    if (host.diskGib - host.usedDiskGib < req.diskGib) return false;
    if (req.gpuProfile) return profileCapacity(host.gpus, req.gpuProfile, req.gpuModel) > 0;
    return req.gpuCount === 0 || largestWholeGpuCount(host, req.gpuModel) >= req.gpuCount;
  });
}

describe('schedule with fractional GPUs on random fleets under random creates and deletes', () => {
  it('places only what fits, never refuses what fits, and keeps the claimed milli-GPUs exact, for every policy', () => {
    fc.assert(
      fc.property(
        fc.array(sharedHostSpec, { minLength: 1, maxLength: 6 }),
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: sharedRequest.map((req: PlacementRequest): Operation => ({ kind: 'create', req })) },
            { weight: 1, arbitrary: fc.nat().map((pick: number): Operation => ({ kind: 'delete', pick })) },
          ),
          { minLength: 1, maxLength: 60 },
        ),
        fc.constantFrom(...POLICY_NAMES),
        fc.integer(),
        (specs: SharedHostSpec[], operations: Operation[], policyName: PolicyName, seed: number) => {
          const hosts: SchedulerHost[] = buildSharedFleet(specs);
          const ledger: FleetLedger = createFleetLedger(hosts);
          const random: () => number = seededRandom(seed);
          const workload: WorkloadTally = createWorkloadTally();
          runOperations(
            ledger,
            operations,
            (req: PlacementRequest) => {
              workload.record([req]);
              return schedule(hosts, req, POLICIES[policyName], random, { workload: workload.mix() });
            },
            (req: PlacementRequest | null, placement: Placement | null, vms: readonly LiveVm[]) => {
              // A placement that breaks mode, model, profile, slots or the one-size rule has already thrown in the ledger.
              if (req !== null && placement === null) expect(someHostTakes(hosts, req)).toBe(false);
              const expected: number = vms.reduce((sum: number, vm: LiveVm) => sum + heldMilli(ledger, vm), 0);
              expect(ledger.allocatedMilli).toBe(expected);
            },
          );
        },
      ),
      { seed: 20261201, numRuns: 300 },
    );
  });

  it('reports as free exactly what claiming until refusal places, for each profile', () => {
    fc.assert(
      fc.property(
        fc.array(sharedHostSpec, { minLength: 1, maxLength: 5 }),
        fc.array(sharedRequest, { maxLength: 25 }),
        fc.constantFrom(...PROFILE_NAMES),
        fc.constantFrom<PolicyName>('frag-aware-binpack', 'first-fit', 'best-fit'),
        (specs: SharedHostSpec[], requests: PlacementRequest[], profile: string, policyName: PolicyName) => {
          const hosts: SchedulerHost[] = buildSharedFleet(specs).map((host) => ({ ...host, cpuCores: 10_000, memoryMib: 1 << 30 }));
          const ledger: FleetLedger = createFleetLedger(hosts);
          for (const req of requests) {
            const placement: Placement | null = schedule(hosts, req, POLICIES[policyName], () => 0.5);
            if (placement !== null) applyPlacement(ledger, placement, req);
          }
          const reported: number = profileCapacity(hosts.flatMap((host) => host.gpus), profile);
          const tiny: PlacementRequest = { cpuCores: 0, memoryMib: 0, diskGib: 0, gpuCount: 0, gpuProfile: profile };
          let placed: number = 0;
          for (let placement = schedule(hosts, tiny, POLICIES[policyName], () => 0.5); placement !== null; placement = schedule(hosts, tiny, POLICIES[policyName], () => 0.5)) {
            applyPlacement(ledger, placement, tiny);
            placed++;
          }
          expect(placed).toBe(reported);
        },
      ),
      { seed: 20261202, numRuns: 300 },
    );
  });
});
