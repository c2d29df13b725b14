import type { Tx } from '../../src/database/unit-of-work';
import { FLEET_SNAPSHOT_TTL_MS } from '../../src/fleet/fleet-snapshot';
import { HostState } from '../../src/fleet/host.entity';
import { PlacementConflictError, PlacementService } from '../../src/fleet/placement.service';
import { MetricsService } from '../../src/metrics/metrics.service';
import type { PlacementRequest } from '../../src/scheduler/scheduler.types';
import { DB_KINDS, deferred, errorOf, one, reportSkippedPostgres, useTestDatabase } from './support/database';
import { at, ids, insertUser, insertVm, placementService, registerHost } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

/** Eight cores: exactly what the small host has. */
const CPU_VM: PlacementRequest = { cpuCores: 8, memoryMib: 4096, diskGib: 40, gpuCount: 0, region: null };
const GPU_VM: PlacementRequest = { cpuCores: 2, memoryMib: 4096, diskGib: 40, gpuCount: 1, gpuModel: 'h100-80gb', region: null };

/** One process's view: its own repositories (and so its own fleet snapshot) over the shared database. */
interface Replica {
  fleet: Repositories['fleet'];
  vms: Repositories['vms'];
  placement: PlacementService;
  metrics: MetricsService;
}

/** How many plans the replica recorded with this outcome and fleet source (vmplane_placement_duration_seconds_count). */
async function plans(r: Replica, outcome: 'placed' | 'no_fit', fleet: 'snapshot' | 'database'): Promise<number> {
  const { values } = await r.metrics.placementDuration.get();
  return values.find((v) => v.metricName === 'vmplane_placement_duration_seconds_count' && v.labels.outcome === outcome && v.labels.fleet === fleet)?.value ?? 0;
}

/** Claims the replica found stale, by what was taken (vmplane_placement_conflicts_total). */
async function conflicts(r: Replica, resource: 'host' | 'gpu' | 'slot'): Promise<number> {
  return (await r.metrics.placementConflicts.get()).values.find((v) => v.labels.resource === resource)?.value ?? 0;
}

/**
 * The fleet snapshot placement keeps between requests (src/fleet/fleet-snapshot.ts). Two replicas are two
 * repository sets over one database, as two processes would be. Best-fit puts an 8-core VM on the small
 * (8-core) host while it has room, else on the big one (the GPU host has GPU room to keep), so which host a plan names shows what its snapshot believes.
 */
describe.each(DB_KINDS)('the fleet snapshot on %s', (kind) => {
  const db = useTestDatabase(kind);
  const replica = (): Replica => {
    const { fleet, vms } = repositoriesOf(db());
    const metrics = new MetricsService();
    return { fleet, vms, metrics, placement: placementService(db().uow, fleet, 'best-fit', metrics) };
  };
  let a: Replica;
  let b: Replica;
  let owner: string;
  let small: string;
  let big: string;
  let gpu: string;
  beforeEach(async () => {
    a = replica();
    b = replica();
    owner = await db().uow.transaction((tx) => insertUser(tx));
    [small, big, gpu] = await db().uow.transaction(async (tx) => [
      (await registerHost(tx, a.fleet, { name: 'small', cpuCores: 8 })).id,
      (await registerHost(tx, a.fleet, { name: 'big', cpuCores: 64 })).id,
      (await registerHost(tx, a.fleet, { name: 'gpu', cpuCores: 64, gpus: ['h100-80gb', 'h100-80gb'] })).id,
    ]);
  });

  const planned = async (r: Replica, request = CPU_VM) => (await db().uow.transaction((tx) => r.placement.plan(tx, request)))?.hostName ?? null;

  async function place(tx: Tx, r: Replica, request = CPU_VM) {
    const plan = await r.placement.plan(tx, request);
    if (!plan) throw new Error('no plan');
    const vm = await insertVm(tx, r.vms, owner, { cpuCores: request.cpuCores, memory: request.memoryMib, diskSize: request.diskGib, gpuCount: request.gpuCount, gpuModel: plan.gpus[0]?.model ?? null, hostId: plan.hostId });
    await r.placement.claim(tx, vm.id, plan, request, plan.gpus.map(() => ids.next()));
    return { vm, plan };
  }

  const release = (r: Replica, placed: Awaited<ReturnType<typeof place>>, request = CPU_VM) =>
    db().uow.transaction((tx) => r.placement.release(tx, { id: placed.vm.id, hostId: placed.plan.hostId, ...request }, at(1)));

  const usedCores = (hostId: string) =>
    db().uow.read(async (tx) => (await one<{ used_cpu_cores: number }>(tx, 'SELECT used_cpu_cores FROM hosts WHERE id = $1', [hostId]))!.used_cpu_cores);

  it('has a claim made in this process in the next plan', async () => {
    expect(await planned(a)).toBe('small');
    await db().uow.transaction((tx) => place(tx, a));
    expect(await planned(a)).toBe('big');
    // The first plan read the fleet; the two after it were decided by the snapshot.
    expect([await plans(a, 'placed', 'database'), await plans(a, 'placed', 'snapshot')]).toEqual([1, 2]);
  });

  it('gives back in the next plan what a release in this process freed', async () => {
    const placed = await db().uow.transaction((tx) => place(tx, a));
    expect(await planned(a)).toBe('big');
    await release(a, placed);
    expect(await planned(a)).toBe('small');
  });

  it('offers what a release frees only once the release commits', async () => {
    const placed = await db().uow.transaction((tx) => place(tx, a));
    const during = await db().uow.transaction(async (tx) => {
      await a.placement.release(tx, { id: placed.vm.id, hostId: placed.plan.hostId, ...CPU_VM }, at(1));
      return (await a.placement.plan(tx, CPU_VM))?.hostName;
    });
    expect(during).toBe('big');
    expect(await planned(a)).toBe('small');
  });

  it('forgets a claim whose transaction did not commit', async () => {
    expect(await planned(a)).toBe('small');
    const failed = await errorOf(() =>
      db().uow.transaction(async (tx) => {
        await place(tx, a);
        throw new Error('a later step failed');
      }),
    );
    expect((failed as Error).message).toBe('a later step failed');
    expect(await usedCores(small)).toBe(0);
    expect(await planned(a)).toBe('small');
  });

  it('binds each whole GPU once, and offers a released one again', async () => {
    const first = await db().uow.transaction((tx) => place(tx, a, GPU_VM));
    const second = await db().uow.transaction((tx) => place(tx, a, GPU_VM));
    expect(second.plan.gpus[0].id).not.toBe(first.plan.gpus[0].id);
    // Both H100s are bound: the next GPU request finds none, in the snapshot and in the database.
    expect(await planned(a, GPU_VM)).toBeNull();
    await release(a, first, GPU_VM);
    const third = await db().uow.transaction((tx) => a.placement.plan(tx, GPU_VM));
    expect(third?.gpus.map((g) => g.id)).toEqual([first.plan.gpus[0].id]);
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: a reading taken while a claim of this process is uncommitted has that claim (the read cannot see it)', async () => {
      const claimed = deferred();
      const finish = deferred();
      const holding = db().uow.transaction(async (tx) => {
        const placed = await place(tx, a);
        claimed.resolve();
        await finish.promise;
        return placed.plan.hostName;
      });
      await claimed.promise;
      // Another change drops the snapshot; the next plan reads the fleet while the claim is still uncommitted
      // (without the placement lock, which the open transaction holds).
      a.fleet.forgetPlacementSnapshot();
      let seen: string | null | undefined;
      try {
        seen = (await db().uow.transaction((tx) => a.placement.plan(tx, CPU_VM, false)))?.hostName;
      } finally {
        finish.resolve();
      }
      expect(seen).toBe('big');
      expect(await holding).toBe('small');
      expect(await planned(a)).toBe('big');
    });
  }

  it('costs a re-plan, never an over-committed host, when another replica claimed what it shows as free', async () => {
    expect(await planned(a)).toBe('small');
    await db().uow.transaction((tx) => place(tx, b));
    const conflict = await errorOf(() => db().uow.transaction((tx) => place(tx, a)));
    expect(conflict).toBeInstanceOf(PlacementConflictError);
    expect((conflict as PlacementConflictError).fullHostId).toBe(small);
    expect([await conflicts(a, 'host'), await conflicts(a, 'gpu'), await conflicts(b, 'host')]).toEqual([1, 0, 0]);
    expect(await usedCores(small)).toBe(8);
    // The failed claim dropped the snapshot: the next plan reads the fleet again.
    expect(await planned(a)).toBe('big');
  });

  it('plans from the database when the GPUs its snapshot chose were bound by another replica (their rows say so)', async () => {
    const seen = await db().uow.transaction((tx) => a.placement.plan(tx, GPU_VM));
    const taken = await db().uow.transaction((tx) => place(tx, b, GPU_VM));
    expect(taken.plan.gpus.map((g) => g.id)).toEqual(seen!.gpus.map((g) => g.id));
    const next = await db().uow.transaction((tx) => place(tx, a, GPU_VM));
    expect(next.plan.gpus[0].id).not.toBe(taken.plan.gpus[0].id);
    expect(next.plan.hostId).toBe(gpu);
    // Both of a's plans were the database's: the first read the fleet, the second found its snapshot's GPUs bound.
    expect([await plans(a, 'placed', 'database'), await plans(a, 'placed', 'snapshot'), await conflicts(a, 'gpu')]).toEqual([2, 0, 0]);
  });

  it('finds capacity another replica gave back although its snapshot shows none', async () => {
    for (const id of [big, gpu]) await db().uow.transaction((tx) => a.fleet.setHostState(tx, id, HostState.Draining));
    const placed = await db().uow.transaction((tx) => place(tx, a));
    expect(await planned(a)).toBeNull();
    expect(await plans(a, 'no_fit', 'database')).toBe(1);
    await release(b, placed);
    expect(await planned(a)).toBe('small');
  });

  it('does not choose a host drained in this process, and sees one drained elsewhere once the snapshot is older than its TTL', async () => {
    expect(await planned(a)).toBe('small');
    await db().uow.transaction((tx) => a.fleet.setHostState(tx, small, HostState.Draining));
    expect(await planned(a)).toBe('big');
    await db().uow.transaction((tx) => a.fleet.setHostState(tx, small, HostState.Active));
    expect(await planned(a)).toBe('small');

    await db().uow.transaction((tx) => b.fleet.updateHost(tx, small, { state: HostState.Draining }));
    // Within its TTL the snapshot still shows the host active (a claim on it would fail and re-plan) ...
    expect(await planned(a)).toBe('small');
    db().clock.advance(FLEET_SNAPSHOT_TTL_MS);
    // ... and after it, the fleet is read again.
    expect(await planned(a)).toBe('big');
  });
});

reportSkippedPostgres('the fleet snapshot');
