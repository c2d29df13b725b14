import type { Tx } from '../../src/database/unit-of-work';
import { GpuAllocationEntity } from '../../src/fleet/gpu-allocation.entity';
import { HostState } from '../../src/fleet/host.entity';
import type { GpuNeed } from '../../src/fleet/fleet.repository';
import { PlacementConflictError, PlacementPlan, PlacementService } from '../../src/fleet/placement.service';
import { schedule } from '../../src/scheduler/scheduler';
import type { PlacementRequest } from '../../src/scheduler/scheduler.types';
import { DB_KINDS, errorOf, one, reportSkippedPostgres, rows, scalar, useTestDatabase } from './support/database';
import { T0, at, ids, insertUser, insertVm, placementService, registerHost } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

const H100 = 'h100-80gb';
const A100 = 'a100-80gb';
const H200 = 'h200-141gb';

function gpuRequest(gpuCount: number, overrides: Partial<PlacementRequest> = {}): PlacementRequest {
  return { cpuCores: 8, memoryMib: 32_768, diskGib: 100, gpuCount, gpuModel: H100, region: null, ...overrides };
}

interface HostRow {
  used_cpu_cores: number;
  used_memory_mib: number;
  used_disk_gib: number;
}

describe.each(DB_KINDS)('PlacementService and FleetRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  let fleet: Repositories['fleet'];
  let vms: Repositories['vms'];
  let placement: PlacementService;
  beforeEach(() => {
    ({ fleet, vms } = repositoriesOf(db()));
    placement = placementService(db().uow, fleet);
  });

  const hostUsage = (hostId: string) =>
    db().uow.read(async (tx) => {
      const row = await one<HostRow>(tx, 'SELECT used_cpu_cores, used_memory_mib, used_disk_gib FROM hosts WHERE id = $1', [hostId]);
      return { cpu: row!.used_cpu_cores, memory: row!.used_memory_mib, disk: row!.used_disk_gib };
    });

  const gpuBindings = () =>
    db().uow.read(async (tx) => {
      const found = await rows<{ id: string; vm_id: string | null }>(tx, 'SELECT id, vm_id FROM gpus ORDER BY id');
      return new Map(found.map((r) => [r.id, r.vm_id]));
    });

  /** The placement half of VmsService.recordPlaced: plan, insert the VM row on the chosen host, claim (quota is not under test here). */
  async function place(tx: Tx, owner: string, request: PlacementRequest, plan?: PlacementPlan | null) {
    const chosen = plan === undefined ? await placement.plan(tx, request) : plan;
    if (!chosen) return null;
    const vm = await insertVm(tx, vms, owner, {
      cpuCores: request.cpuCores,
      memory: request.memoryMib,
      diskSize: request.diskGib,
      gpuCount: request.gpuCount,
      gpuProfile: request.gpuProfile ?? null,
      gpuModel: chosen.gpus[0]?.model ?? chosen.slotClaim?.gpu.model ?? null,
      hostId: chosen.hostId,
      region: chosen.region,
    });
    await placement.claim(tx, vm.id, chosen, request, chosen.gpus.map(() => ids.next()));
    return { vm, plan: chosen };
  }

  /** The GPUs a VM holds or held, through its allocation history, in device order. */
  const gpusOf = async (vmId: string) => (await db().uow.read((tx) => vms.findById(tx, vmId, { gpus: true })))!.allocations!.map((a) => a.gpu!);

  let owner: string;
  beforeEach(async () => {
    owner = await db().uow.transaction((tx) => insertUser(tx));
  });

  it('a claimed plan takes the host CPU, memory and disk and binds exactly the planned GPUs, with live allocations', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: [H100, H100, H100, H100] }));
    const request = gpuRequest(2, { cpuCores: 16, memoryMib: 65_536, diskGib: 200 });

    const placed = await db().uow.transaction((tx) => place(tx, owner, request));
    expect(placed).not.toBeNull();
    const { vm, plan } = placed!;
    expect(plan).toMatchObject({ hostId: host.id, hostName: host.name, region: 'eu-west' });
    expect(plan.gpus).toHaveLength(2);
    expect(new Set(plan.gpus.map((g) => g.id)).size).toBe(2);
    for (const g of plan.gpus) expect(g).toMatchObject({ hostId: host.id, model: H100 });

    expect(await hostUsage(host.id)).toEqual({ cpu: 16, memory: 65_536, disk: 200 });
    const bindings = await gpuBindings();
    const bound = [...bindings].filter(([, vmId]) => vmId !== null);
    expect(bound.map(([id]) => id).sort()).toEqual(plan.gpus.map((g) => g.id).sort());
    expect(bound.every(([, vmId]) => vmId === vm.id)).toBe(true);

    const allocations = await db().uow.read((tx) => tx.find(GpuAllocationEntity));
    expect(allocations.map((a) => a.gpuId).sort()).toEqual(plan.gpus.map((g) => g.id).sort());
    expect(allocations.every((a) => a.vmId === vm.id && a.releasedAt === null)).toBe(true);

    // The VM reads its GPUs back through the allocation relation, in device order.
    const held = await gpusOf(vm.id);
    expect(held.map((g) => g.id)).toEqual(plan.gpus.map((g) => g.id));
    expect(held.map((g) => g.index)).toEqual([...held.map((g) => g.index)].sort((a, b) => a - b));
    expect(await db().uow.read((tx) => vms.findById(tx, vm.id))).toMatchObject({ hostId: host.id, region: 'eu-west' });
  });

  it('for a whole-GPU request loads only hosts with enough free passthrough GPUs of the model (of any one model when none is named), for a fractional one only hosts with a GPU in its mode', async () => {
    const [a, b, cpuOnly, d] = await db().uow.transaction(async (tx) => [
      await registerHost(tx, fleet, { gpus: [H100, H100] }),
      await registerHost(tx, fleet, { gpus: [H100, H100] }),
      await registerHost(tx, fleet),
      await registerHost(tx, fleet, { gpus: [A100, A100, A100] }),
    ]);
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    // One of b's H100s taken; one of d's A100s in vGPU mode.
    await db().uow.transaction(async (tx) => {
      const vm = await insertVm(tx, vms, owner);
      expect(await fleet.bindGpus(tx, vm.id, b.id, [b.gpus[0].id])).toBe(1);
      expect(await fleet.setSharingMode(tx, d.id, d.gpus[0].id, 'vgpu')).toBe(true);
    });
    const ours = new Map([a, b, cpuOnly, d].map((host, i) => [host.id, 'abcd'[i]]));
    const loaded = (need?: GpuNeed) =>
      db().uow.read(async (tx) =>
        (await fleet.loadCandidates(tx, { cpuCores: 1, memoryMib: 1024, diskGib: 1 }, null, need))
          .filter((host) => ours.has(host.id))
          .map((host) => ours.get(host.id))
          .sort(),
      );
    expect(await loaded({ count: 2, model: H100 })).toEqual(['a']);
    expect(await loaded({ count: 1, model: H100 })).toEqual(['a', 'b']);
    expect(await loaded({ count: 2, model: null })).toEqual(['a', 'd']);
    expect(await loaded({ count: 3, model: null })).toEqual([]);
    expect(await loaded({ count: 1, model: H200 })).toEqual([]);
    expect(await loaded({ count: 0, model: null })).toEqual(['a', 'b', 'c', 'd']);
    expect(await loaded()).toEqual(['a', 'b', 'c', 'd']);
    expect(await loaded({ count: 0, model: null, sharedMode: 'vgpu' })).toEqual(['d']);
    expect(await loaded({ count: 0, model: A100, sharedMode: 'vgpu' })).toEqual(['d']);
    expect(await loaded({ count: 0, model: H100, sharedMode: 'vgpu' })).toEqual([]);
    expect(await loaded({ count: 0, model: null, sharedMode: 'mig' })).toEqual([]);
    // A host that is loaded comes with all of its GPUs, the taken one included.
    const bLoaded = (await db().uow.read((tx) => fleet.loadCandidates(tx, { cpuCores: 1, memoryMib: 1024, diskGib: 1 }, null, { count: 1, model: H100 }))).find(
      (host) => host.id === b.id,
    );
    expect(bLoaded!.gpus.map((gpu) => gpu.free)).toEqual([false, true]);
  });

  it('a stale plan (planned before another claim took its GPUs) fails with PlacementConflictError and rolls back', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: [H100, H100] }));
    const request = gpuRequest(2);
    const first = await db().uow.transaction((tx) => placement.plan(tx, request));
    const second = await db().uow.transaction((tx) => placement.plan(tx, request));
    expect(second!.gpus.map((g) => g.id)).toEqual(first!.gpus.map((g) => g.id));

    await db().uow.transaction((tx) => place(tx, owner, request, first));
    let staleVmId: string | undefined;
    const error = await errorOf(() =>
      db().uow.transaction(async (tx) => {
        const placed = await place(tx, owner, request, second);
        staleVmId = placed?.vm.id;
      }),
    );
    expect(error).toBeInstanceOf(PlacementConflictError);
    expect((error as Error).message).toMatch(/a GPU/);

    // The host claim made before the GPU conflict was rolled back with the transaction.
    expect(await hostUsage(host.id)).toEqual({ cpu: 8, memory: 32_768, disk: 100 });
    const counts = await db().uow.read(async (tx) => ({
      vms: await scalar(tx, 'SELECT COUNT(*) AS n FROM vms'),
      live: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE released_at IS NULL'),
      boundVms: await scalar(tx, 'SELECT COUNT(DISTINCT vm_id) AS n FROM gpus WHERE vm_id IS NOT NULL'),
    }));
    expect(counts).toEqual({ vms: 1, live: 2, boundVms: 1 });
    expect(staleVmId).toBeUndefined();
  });

  it('a stale plan for a host that filled up meanwhile fails on the host claim', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { cpuCores: 10, memoryMib: 65_536, diskGib: 500 }));
    const request: PlacementRequest = { cpuCores: 6, memoryMib: 1024, diskGib: 10, gpuCount: 0 };
    const first = await db().uow.transaction((tx) => placement.plan(tx, request));
    const second = await db().uow.transaction((tx) => placement.plan(tx, request));
    await db().uow.transaction((tx) => place(tx, owner, request, first));

    const error = await errorOf(() => db().uow.transaction((tx) => place(tx, owner, request, second)));
    expect(error).toBeInstanceOf(PlacementConflictError);
    expect((error as Error).message).toContain(`host ${host.name}`);
    expect(await hostUsage(host.id)).toEqual({ cpu: 6, memory: 1024, disk: 10 });
    // And a fresh plan knows there is no room left.
    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();
  });

  it('claimHost never over-commits: it refuses what does not fit (or a non-active host) and accepts an exact fit', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { cpuCores: 8, memoryMib: 8192, diskGib: 100 }));
    const claim = (cpuCores: number, memoryMib: number, diskGib: number) =>
      db().uow.transaction((tx) => fleet.claimHost(tx, host.id, { cpuCores, memoryMib, diskGib }));

    expect(await claim(6, 4096, 50)).toBe(true);
    expect(await claim(3, 1, 1)).toBe(false); // CPU
    expect(await claim(1, 4097, 1)).toBe(false); // memory
    expect(await claim(1, 1, 51)).toBe(false); // disk
    expect(await hostUsage(host.id)).toEqual({ cpu: 6, memory: 4096, disk: 50 });
    expect(await claim(2, 4096, 50)).toBe(true);
    expect(await hostUsage(host.id)).toEqual({ cpu: 8, memory: 8192, disk: 100 });
    expect(await claim(0, 0, 0)).toBe(true);

    const other = await db().uow.transaction((tx) => registerHost(tx, fleet, { state: HostState.Draining }));
    expect(await db().uow.transaction((tx) => fleet.claimHost(tx, other.id, { cpuCores: 1, memoryMib: 1, diskGib: 1 }))).toBe(false);
    expect(await hostUsage(other.id)).toEqual({ cpu: 0, memory: 0, disk: 0 });
  });

  it('release gives back the host capacity and the GPUs and closes the allocations; the GPUs can be placed again', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: [H100, H100] }));
    const request = gpuRequest(2, { cpuCores: 12, memoryMib: 4096, diskGib: 40 });
    const { vm, plan } = (await db().uow.transaction((tx) => place(tx, owner, request)))!;
    expect(await hostUsage(host.id)).toEqual({ cpu: 12, memory: 4096, disk: 40 });
    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();

    const releasedAt = at(60_000);
    await db().uow.transaction((tx) =>
      placement.release(tx, { id: vm.id, hostId: host.id, gpuCount: 2, cpuCores: 12, memoryMib: 4096, diskGib: 40 }, releasedAt),
    );

    expect(await hostUsage(host.id)).toEqual({ cpu: 0, memory: 0, disk: 0 });
    expect([...(await gpuBindings()).values()]).toEqual([null, null]);
    const allocations = await db().uow.read((tx) => tx.find(GpuAllocationEntity, { select: { vmId: true, releasedAt: true } }));
    expect(allocations.map((a) => ({ vmId: a.vmId, releasedAt: a.releasedAt }))).toEqual([
      { vmId: vm.id, releasedAt: releasedAt },
      { vmId: vm.id, releasedAt: releasedAt },
    ]);
    // The history still says which GPUs the VM had.
    expect((await gpusOf(vm.id)).map((g) => g.id).sort()).toEqual(plan.gpus.map((g) => g.id).sort());

    const again = await db().uow.transaction((tx) => place(tx, owner, request));
    expect(again!.plan.gpus.map((g) => g.id).sort()).toEqual(plan.gpus.map((g) => g.id).sort());
    const live = await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE released_at IS NULL'));
    expect(live).toBe(2);
  });

  it('draining and down hosts are not candidates; reactivating a host makes it one again', async () => {
    const draining = await db().uow.transaction((tx) => registerHost(tx, fleet, { state: HostState.Draining, gpus: [H100] }));
    await db().uow.transaction((tx) => registerHost(tx, fleet, { state: HostState.Down, gpus: [H100] }));
    const request = gpuRequest(1);

    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();
    expect(await db().uow.read((tx) => fleet.loadCandidates(tx, request, null))).toEqual([]);
    expect(await db().uow.transaction((tx) => placement.plan(tx, { cpuCores: 1, memoryMib: 1, diskGib: 1, gpuCount: 0 }))).toBeNull();

    db().clock.set(at(10));
    const reactivated = await db().uow.transaction((tx) => fleet.setHostState(tx, draining.id, HostState.Active));
    expect(reactivated).toMatchObject({ id: draining.id, state: HostState.Active, updatedAt: at(10), createdAt: T0 });
    const plan = await db().uow.transaction((tx) => placement.plan(tx, request));
    expect(plan?.hostId).toBe(draining.id);
  });

  it('a host marked unreachable is no candidate, and its free GPUs count as unavailable, until it is marked reachable', async () => {
    const gone = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'gone', gpus: [H100, H100] }));
    const request = gpuRequest(1);
    const marked = await db().uow.transaction((tx) => fleet.markUnreachable(tx, [gone.id], at(5)));
    expect(marked).toBe(1);
    // A second mark keeps the first time.
    expect(await db().uow.transaction((tx) => fleet.markUnreachable(tx, [gone.id], at(9)))).toBe(0);
    expect((await db().uow.read((tx) => fleet.findHost(tx, gone.id)))?.unreachableSince).toEqual(at(5));
    expect(await db().uow.read((tx) => fleet.countUnreachable(tx))).toBe(1);

    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();
    expect(await db().uow.read((tx) => fleet.freeGpusPerHost(tx, request))).toEqual([]);
    expect(await db().uow.read((tx) => fleet.gpuCounts(tx))).toEqual([{ region: 'eu-west', model: H100, total: 2, allocated: 0, free: 0, unavailable: 2 }]);

    expect(await db().uow.transaction((tx) => fleet.markReachable(tx, [gone.id]))).toBe(1);
    expect(await db().uow.transaction((tx) => fleet.markReachable(tx, [gone.id]))).toBe(0);
    expect(await db().uow.read((tx) => fleet.countUnreachable(tx))).toBe(0);
    expect((await db().uow.transaction((tx) => placement.plan(tx, request)))?.hostId).toBe(gone.id);
    expect(await db().uow.read((tx) => fleet.gpuCounts(tx))).toEqual([{ region: 'eu-west', model: H100, total: 2, allocated: 0, free: 2, unavailable: 0 }]);
  });

  it('plans only within the requested region and only on hosts with the requested model', async () => {
    const eu = await db().uow.transaction((tx) => registerHost(tx, fleet, { region: 'eu-west', gpus: [A100, A100] }));
    const us = await db().uow.transaction((tx) => registerHost(tx, fleet, { region: 'us-east', gpus: [H100, H100] }));

    expect((await db().uow.transaction((tx) => placement.plan(tx, gpuRequest(1, { gpuModel: H100 }))))?.hostId).toBe(us.id);
    expect((await db().uow.transaction((tx) => placement.plan(tx, gpuRequest(1, { gpuModel: A100 }))))?.hostId).toBe(eu.id);
    expect(await db().uow.transaction((tx) => placement.plan(tx, gpuRequest(1, { gpuModel: H100, region: 'eu-west' })))).toBeNull();
    const candidates = await db().uow.read((tx) => fleet.loadCandidates(tx, gpuRequest(1), 'us-east'));
    expect(candidates.map((h) => h.id)).toEqual([us.id]);
    expect(candidates[0].gpus.map((g) => [g.index, g.model, g.free])).toEqual([
      [0, H100, true],
      [1, H100, true],
    ]);
  });

  it('alternatives() lists other models at the requested count and smaller counts of the requested model, largest first', async () => {
    await db().uow.transaction(async (tx) => {
      await registerHost(tx, fleet, { name: 'eu-h100', region: 'eu-west', gpus: [H100, H100] });
      await registerHost(tx, fleet, { name: 'eu-a100', region: 'eu-west', gpus: Array(8).fill(A100) });
      await registerHost(tx, fleet, { name: 'us-h100', region: 'us-east', gpus: [H100, H100, H100, H100] });
      // Not offered: a draining host, and a host without room for the request's CPU.
      await registerHost(tx, fleet, { name: 'drain', region: 'eu-west', state: HostState.Draining, gpus: Array(8).fill(H100) });
      await registerHost(tx, fleet, { name: 'tiny', region: 'eu-west', cpuCores: 4, gpus: Array(8).fill(H100) });
    });
    const request = gpuRequest(8, { gpuModel: H100 });

    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();
    const anywhere = await db().uow.read((tx) => placement.alternatives(tx, request));
    expect(anywhere).toEqual([
      { gpu_model: A100, gpu_count: 8, region: 'eu-west' },
      { gpu_model: H100, gpu_count: 4, region: 'us-east' },
      { gpu_model: H100, gpu_count: 2, region: 'eu-west' },
    ]);

    const inEu = await db().uow.read((tx) => placement.alternatives(tx, { ...request, region: 'eu-west' }));
    expect(inEu).toEqual([
      { gpu_model: A100, gpu_count: 8, region: 'eu-west' },
      { gpu_model: H100, gpu_count: 2, region: 'eu-west' },
    ]);

    // Taken GPUs are not offered.
    await db().uow.transaction((tx) => place(tx, owner, gpuRequest(3, { gpuModel: H100, region: 'us-east' })));
    const after = await db().uow.read((tx) => placement.alternatives(tx, request));
    expect(after).toContainEqual({ gpu_model: H100, gpu_count: 2, region: 'eu-west' });
    expect(after).toContainEqual({ gpu_model: H100, gpu_count: 1, region: 'us-east' });
  });

  it('20 concurrent transactions each placing 1 GPU on a fleet of 8 GPUs: exactly 8 succeed, on distinct GPUs', async () => {
    // PostgreSQL: 20 pooled connections at once, serialised by pg_advisory_xact_lock in plan().
    // SQLite: the unit of work runs them one at a time. Either way no plan may be stale.
    const hosts = await db().uow.transaction(async (tx) => [
      await registerHost(tx, fleet, { gpus: [H100, H100, H100, H100] }),
      await registerHost(tx, fleet, { gpus: [H100, H100, H100, H100] }),
    ]);
    const request = gpuRequest(1, { cpuCores: 2, memoryMib: 1024, diskGib: 10 });

    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => db().uow.transaction((tx) => place(tx, owner, request))),
    );

    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    expect(failures).toEqual([]); // with the lock no plan is ever stale, so nothing conflicts
    const placed = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof place>>>).value);
    const winners = placed.filter((p) => p !== null);
    expect(winners).toHaveLength(8);
    expect(placed.filter((p) => p === null)).toHaveLength(12);
    const gpuIds = winners.map((w) => w!.plan.gpus[0].id);
    expect(new Set(gpuIds).size).toBe(8);

    const check = await db().uow.read(async (tx) => ({
      bound: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpus WHERE vm_id IS NOT NULL'),
      boundVms: await scalar(tx, 'SELECT COUNT(DISTINCT vm_id) AS n FROM gpus'),
      live: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE released_at IS NULL'),
      liveGpus: await scalar(tx, 'SELECT COUNT(DISTINCT gpu_id) AS n FROM gpu_allocations WHERE released_at IS NULL'),
      vms: await scalar(tx, 'SELECT COUNT(*) AS n FROM vms'),
      cpu: await scalar(tx, 'SELECT SUM(used_cpu_cores) AS n FROM hosts'),
    }));
    expect(check).toEqual({ bound: 8, boundVms: 8, live: 8, liveGpus: 8, vms: 8, cpu: 16 });
    for (const host of hosts) expect((await hostUsage(host.id)).cpu).toBe(8);
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: without the advisory lock, 20 parallel stale plans still never bind a GPU twice (the conditional claims hold)', async () => {
      await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: [H100, H100, H100, H100] }));
      const request = gpuRequest(1, { cpuCores: 2, memoryMib: 1024, diskGib: 10 });
      const { winners, losers } = await placeStalePlans(20, request, async (tx) => {
        // plan() minus the lock: every transaction reads the same snapshot of free GPUs.
        const hosts = await fleet.loadCandidates(tx, request, null);
        const decision = schedule(hosts, request, placement.policy, () => 0.5);
        return {
          hostId: decision!.hostId,
          hostName: hosts[0].name,
          region: hosts[0].region,
          hypervisorUri: hosts[0].hypervisorUri,
          gpus: await fleet.gpuDetails(tx, decision!.gpuIds),
        };
      });
      expect(winners.length).toBeGreaterThanOrEqual(1);
      expect(losers.length).toBe(20 - winners.length);
      for (const l of losers) expect(l.reason).toBeInstanceOf(PlacementConflictError);
      const check = await db().uow.read(async (tx) => ({
        bound: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpus WHERE vm_id IS NOT NULL'),
        live: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE released_at IS NULL'),
        liveGpus: await scalar(tx, 'SELECT COUNT(DISTINCT gpu_id) AS n FROM gpu_allocations WHERE released_at IS NULL'),
        vms: await scalar(tx, 'SELECT COUNT(*) AS n FROM vms'),
        cpu: await scalar(tx, 'SELECT SUM(used_cpu_cores) AS n FROM hosts'),
      }));
      expect(check).toEqual({ bound: winners.length, live: winners.length, liveGpus: winners.length, vms: winners.length, cpu: 2 * winners.length });
    });
  }

  /**
   * `count` transactions that each plan with `planOf` (no advisory lock), wait until every one has planned, then
   * place: all plans are read from one snapshot, so all but the first to land are stale.
   */
  async function placeStalePlans(count: number, request: PlacementRequest, planOf: (tx: Tx) => Promise<PlacementPlan | null>) {
    let arrived = 0;
    let allPlanned!: () => void;
    const planned = new Promise<void>((r) => (allPlanned = r));
    const results = await Promise.allSettled(
      Array.from({ length: count }, () =>
        db().uow.transaction(async (tx) => {
          const plan = await planOf(tx);
          if (++arrived === count) allPlanned();
          await planned;
          return place(tx, owner, request, plan);
        }),
      ),
    );
    return {
      winners: results.filter((r) => r.status === 'fulfilled'),
      losers: results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[],
    };
  }

  /** A host whose GPUs are all in `mode`, as PATCH /hosts/{id}/gpus/{gpu_id} leaves them. */
  async function sharedHost(models: string[], mode: 'mig' | 'vgpu') {
    return db().uow.transaction(async (tx) => {
      const host = await registerHost(tx, fleet, { gpus: models });
      for (const gpu of host.gpus) expect(await fleet.setSharingMode(tx, host.id, gpu.id, mode)).toBe(true);
      return host;
    });
  }
  const sliceRequest = (gpuProfile: string, gpuModel: string | null = H200): PlacementRequest => ({ cpuCores: 2, memoryMib: 1024, diskGib: 10, gpuCount: 0, gpuProfile, gpuModel, region: null });
  const liveSlots = () =>
    db().uow.read(async (tx) => (await rows<{ gpu_id: string; slot: number; vm_id: string }>(tx, 'SELECT gpu_id, slot, vm_id FROM gpu_slot_claims WHERE released_at IS NULL ORDER BY gpu_id, slot')));

  it('a fractional plan claims its slots as rows; a stale plan for the same slots fails with PlacementConflictError and rolls back', async () => {
    const host = await sharedHost([H200], 'mig');
    const request = sliceRequest('3g.71gb');
    const first = await db().uow.transaction((tx) => placement.plan(tx, request));
    const second = await db().uow.transaction((tx) => placement.plan(tx, request));
    expect(first!.slotClaim).toMatchObject({ profile: '3g.71gb', slots: [4, 5, 6, 7], gpu: { id: host.gpus[0].id } });
    expect(second!.slotClaim!.slots).toEqual([4, 5, 6, 7]);
    const placed = await db().uow.transaction((tx) => place(tx, owner, request, first));
    const error = await errorOf(() => db().uow.transaction((tx) => place(tx, owner, request, second)));
    expect(error).toBeInstanceOf(PlacementConflictError);
    expect(await liveSlots()).toEqual([4, 5, 6, 7].map((slot) => ({ gpu_id: host.gpus[0].id, slot, vm_id: placed!.vm.id })));
    expect(await hostUsage(host.id)).toEqual({ cpu: 2, memory: 1024, disk: 10 }); // the stale claim's host usage rolled back
    // A fresh plan sees the claim and takes the other half.
    const other = await db().uow.transaction((tx) => place(tx, owner, request));
    expect(other!.plan.slotClaim!.slots).toEqual([0, 1, 2, 3]);
    expect(await db().uow.transaction((tx) => placement.plan(tx, request))).toBeNull();

    // Release gives the slots back and counts the GPU's claims down.
    await db().uow.transaction((tx) => placement.release(tx, { ...placed!.vm, memoryMib: 1024, diskGib: 10, cpuCores: 2 }, at(1)));
    expect((await liveSlots()).map((r) => r.slot)).toEqual([0, 1, 2, 3]);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT live_claims AS n FROM gpus WHERE id = $1', [host.gpus[0].id]))).toBe(1);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_slot_claims WHERE released_at IS NOT NULL'))).toBe(4);
  });

  it('a vGPU GPU holds one size: the first claim sets it, another size cannot join, and the last release clears it', async () => {
    const host = await sharedHost([H200], 'vgpu');
    const gpuSize = () => db().uow.read(async (tx) => (await one<{ vgpu_profile: string | null }>(tx, 'SELECT vgpu_profile FROM gpus WHERE id = $1', [host.gpus[0].id]))!.vgpu_profile);
    const quarters: Awaited<ReturnType<typeof place>>[] = [];
    for (let i = 0; i < 4; i++) quarters.push(await db().uow.transaction((tx) => place(tx, owner, sliceRequest('1/4', null))));
    expect(quarters.map((q) => q!.plan.slotClaim!.slots)).toEqual([[0], [1], [2], [3]]);
    expect(await gpuSize()).toBe('1/4');
    expect(await db().uow.transaction((tx) => placement.plan(tx, sliceRequest('1/2', null)))).toBeNull();
    // Even a plan made by hand for a free seat cannot mix sizes: the GPU row's condition refuses it.
    await db().uow.transaction((tx) => placement.release(tx, { ...quarters[3]!.vm, memoryMib: 1024, diskGib: 10, cpuCores: 2 }, at(1)));
    const forged: PlacementPlan = { ...quarters[3]!.plan, slotClaim: { ...quarters[3]!.plan.slotClaim!, profile: '1/2', slots: [3] } }; // seat 3 is free again: only the size stops it
    expect(await errorOf(() => db().uow.transaction((tx) => place(tx, owner, sliceRequest('1/2', null), forged)))).toBeInstanceOf(PlacementConflictError);
    for (const q of quarters.slice(0, 3)) await db().uow.transaction((tx) => placement.release(tx, { ...q!.vm, memoryMib: 1024, diskGib: 10, cpuCores: 2 }, at(2)));
    expect(await gpuSize()).toBeNull();
    expect((await db().uow.transaction((tx) => place(tx, owner, sliceRequest('1/2', null))))!.plan.slotClaim!.slots).toEqual([0]);
    expect(await gpuSize()).toBe('1/2');
  });

  it('whole-GPU requests never take a GPU in a shared mode, and a GPU with a live claim changes mode only after release', async () => {
    const host = await sharedHost([H200, H200], 'mig');
    expect(await db().uow.transaction((tx) => placement.plan(tx, gpuRequest(1, { gpuModel: H200 })))).toBeNull();
    const placed = await db().uow.transaction((tx) => place(tx, owner, sliceRequest('1g.18gb')));
    const held = placed!.plan.slotClaim!.gpu.id;
    const idle = host.gpus.find((g) => g.id !== held)!.id;
    expect(await db().uow.transaction((tx) => fleet.setSharingMode(tx, host.id, held, 'passthrough'))).toBe(false);
    expect(await db().uow.transaction((tx) => fleet.setSharingMode(tx, host.id, idle, 'passthrough'))).toBe(true);
    const whole = await db().uow.transaction((tx) => place(tx, owner, gpuRequest(1, { gpuModel: H200 })));
    expect(whole!.plan.gpus.map((g) => g.id)).toEqual([idle]);
    // A bound whole GPU cannot change mode either.
    expect(await db().uow.transaction((tx) => fleet.setSharingMode(tx, host.id, idle, 'mig'))).toBe(false);
    await db().uow.transaction((tx) => placement.release(tx, { ...placed!.vm, memoryMib: 1024, diskGib: 10, cpuCores: 2 }, at(1)));
    expect(await db().uow.transaction((tx) => fleet.setSharingMode(tx, host.id, held, 'passthrough'))).toBe(true);
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: without the advisory lock, 20 parallel stale fractional plans never hold a slot twice (the slot index and the GPU row decide)', async () => {
      await sharedHost([H200, H200], 'mig');
      const request = sliceRequest('2g.35gb');
      const { winners, losers } = await placeStalePlans(20, request, (tx) => placement.plan(tx, request, false));
      expect(winners.length).toBeGreaterThanOrEqual(1);
      for (const l of losers) expect(l.reason).toBeInstanceOf(PlacementConflictError);
      const held = await liveSlots();
      expect(new Set(held.map((r) => `${r.gpu_id}:${r.slot}`)).size).toBe(held.length);
      expect(held).toHaveLength(2 * winners.length);
      const counted = await db().uow.read((tx) => scalar(tx, 'SELECT SUM(live_claims) AS n FROM gpus'));
      expect(counted).toBe(winners.length);
    });
  }

  it('findHost/listHosts load hosts with their GPUs in index order; gpuCounts() totals per region and model', async () => {
    const a = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'b-host', region: 'eu-west', gpus: [H100, H100, H100] }));
    await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'a-host', region: 'eu-west', state: HostState.Draining, gpus: [H100] }));
    await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'c-host', region: 'us-east', gpus: [A100] }));
    await db().uow.transaction((tx) => place(tx, owner, gpuRequest(2)));

    const found = await db().uow.read((tx) => fleet.findHost(tx, a.id));
    expect(found).toMatchObject({ id: a.id, name: 'b-host', cpuCores: 64, usedCpuCores: 8, state: HostState.Active, createdAt: T0 });
    expect(found!.gpus.map((g) => g.index)).toEqual([0, 1, 2]);
    expect(found!.gpus.filter((g) => g.vmId !== null)).toHaveLength(2);
    expect((await db().uow.read((tx) => fleet.listHosts(tx))).map((h) => h.name)).toEqual(['a-host', 'b-host', 'c-host']);
    expect(await db().uow.read((tx) => fleet.hostNameExists(tx, 'b-host'))).toBe(true);
    expect(await db().uow.read((tx) => fleet.hostNameExists(tx, 'B-HOST'))).toBe(false);
    expect(await db().uow.read((tx) => fleet.existingGpuUuids(tx, [a.gpus[1].uuid, 'GPU-unknown']))).toEqual([a.gpus[1].uuid]);

    const counts = await db().uow.read((tx) => fleet.gpuCounts(tx));
    expect(counts).toEqual([
      { region: 'us-east', model: A100, total: 1, allocated: 0, free: 1, unavailable: 0 },
      { region: 'eu-west', model: H100, total: 4, allocated: 2, free: 1, unavailable: 1 },
    ]);
  });

  it('placement works with the timestamps it writes (updated_at on hosts, gpus and allocations moves to the claim time, then the release time)', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: [H100] }));
    const claimedAt = at(123_456);
    db().clock.set(claimedAt);
    const { vm } = (await db().uow.transaction((tx) => place(tx, owner, gpuRequest(1))))!;
    const stamps = async () => {
      const found = (await db().uow.read((tx) => fleet.findHost(tx, host.id)))!;
      const [allocation] = await db().uow.read((tx) => tx.find(GpuAllocationEntity));
      return { host: found.updatedAt, gpu: found.gpus[0].updatedAt, allocation: allocation.updatedAt, created: found.createdAt };
    };
    expect(await stamps()).toEqual({ host: claimedAt, gpu: claimedAt, allocation: claimedAt, created: T0 });

    const releasedAt = at(200_000);
    db().clock.set(releasedAt);
    await db().uow.transaction((tx) => placement.release(tx, { ...vm, memoryMib: vm.memory, diskGib: vm.diskSize }, releasedAt));
    expect(await stamps()).toEqual({ host: releasedAt, gpu: releasedAt, allocation: releasedAt, created: T0 });
  });
});

reportSkippedPostgres('PlacementService and FleetRepository');
