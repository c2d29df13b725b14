import fc from 'fast-check';
import { seededRandom } from '../../libs/sdk/src/seeded-random';
import { applyPlacement, createFleetLedger, FleetLedger, releasePlacement } from './fleet-ledger';
import { POLICIES, schedule } from './scheduler';
import { HostState, Placement, PlacementRequest, PolicyName, SchedulerGpu, SchedulerHost } from './scheduler.types';

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
          const live: { placement: Placement; req: PlacementRequest }[] = [];

          for (const op of operations) {
            if (op.kind === 'delete') {
              if (live.length === 0) continue;
              const [vm] = live.splice(op.pick % live.length, 1);
              releasePlacement(ledger, vm.placement, vm.req);
            } else {
              const placement: Placement | null = schedule(hosts, op.req, POLICIES[policyName], random);
              if (placement === null) {
                expect(someHostFits(hosts, op.req)).toBe(false);
              } else {
                expectValidPlacement(hosts, op.req, placement);
                applyPlacement(ledger, placement, op.req);
                live.push({ placement, req: op.req });
              }
            }
            expectConsistentFleet(hosts, live);
          }

          for (const vm of live.splice(0)) releasePlacement(ledger, vm.placement, vm.req);
          expect(hosts).toEqual(empty);
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
