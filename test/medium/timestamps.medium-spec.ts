import { HostState } from '../../src/fleet/host.entity';
import { OperationStatus } from '../../src/operations/operation.entity';
import { VmEvent } from '../../src/vms/vm-state-machine';
import { DB_KINDS, one, reportSkippedPostgres, rows, useTestDatabase } from './support/database';
import { T0, at, ids, insertUser, insertVm, operation, registerHost } from './support/fixtures';
import { repositoriesOf } from './support/repositories';

/**
 * created_at and updated_at come from the entities' timestamp columns,
 * stamped by TimestampSubscriber from the clock on every write TypeORM runs:
 * every write path below moves updated_at to the clock's time, and none
 * touches created_at.
 */
describe.each(DB_KINDS)('timestamps on every write path on %s', (kind) => {
  const db = useTestDatabase(kind);
  const repos = () => repositoriesOf(db());
  const T1 = at(60_000);

  async function stamps(table: string, id: string): Promise<{ created: number; updated: number }> {
    const row = await db().uow.read((tx) => one<{ created_at: unknown; updated_at: unknown }>(tx, `SELECT created_at, updated_at FROM ${table} WHERE id = $1`, [id]));
    const time = (value: unknown) => (value instanceof Date ? value : new Date(`${String(value).replace(' ', 'T')}Z`)).getTime();
    return { created: time(row!.created_at), updated: time(row!.updated_at) };
  }

  /** Inserts at T0, runs `write` at T1, and expects updated_at = T1 and created_at = T0. */
  async function expectStamped(table: string, id: string, write: () => Promise<unknown>): Promise<void> {
    expect(await stamps(table, id)).toEqual({ created: T0.getTime(), updated: T0.getTime() });
    db().clock.set(T1);
    await write();
    expect(await stamps(table, id)).toEqual({ created: T0.getTime(), updated: T1.getTime() });
  }

  beforeEach(() => db().clock.set(T0));

  it('inserts stamp both columns from the clock, to the millisecond', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    expect(vm.createdAt).toEqual(T0);
    expect(await stamps('vms', vm.id)).toEqual({ created: T0.getTime(), updated: T0.getTime() });
  });

  it('a VM status change', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    await expectStamped('vms', vm.id, async () => {
      const result = await db().uow.transaction((tx) => repos().vms.transition(tx, vm.id, VmEvent.Provisioned, { hypervisorId: 'hv-1' }));
      expect(result).toEqual({ applied: true, updatedAt: T1 });
    });
  });

  it('a VM renamed and relabelled (its label rows replaced), and not once it is deleted', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    await expectStamped('vms', vm.id, async () => {
      const result = await db().uow.transaction((tx) => repos().vms.updateDetails(tx, vm.id, { name: 'renamed', labels: ['a', 'b'] }));
      expect(result).toEqual({ applied: true, updatedAt: T1 });
    });
    const labels = await db().uow.read((tx) => rows<{ label: string }>(tx, 'SELECT label FROM vm_labels WHERE vm_id = $1 ORDER BY label', [vm.id]));
    expect(labels.map((r) => r.label)).toEqual(['a', 'b']);
    await db().uow.transaction((tx) => repos().vms.transition(tx, vm.id, VmEvent.RecordDeleted, { deletedAt: T1 }));
    db().clock.set(at(120_000));
    expect(await db().uow.transaction((tx) => repos().vms.updateDetails(tx, vm.id, { name: 'late' }))).toEqual({ applied: false });
    expect((await stamps('vms', vm.id)).updated).toBe(T1.getTime());
  });

  it('a VM release (released_at set once)', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    await expectStamped('vms', vm.id, () => db().uow.transaction((tx) => repos().vms.markReleased(tx, vm.id, T1)));
  });

  it('an idempotency key attached to its VM and operation, and its stored response', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    const op = operation({ vmId: vm.id });
    await db().uow.transaction((tx) => repos().ops.insert(tx, op));
    const claim = await db().uow.transaction((tx) => repos().idempotency.claim(tx, owner, 'key-1', 'hash', T0, 24));
    if (claim.kind !== 'new') throw new Error('expected a new key');
    await expectStamped('idempotency_keys', claim.id, () => db().uow.transaction((tx) => repos().idempotency.attach(tx, claim.id, vm.id, op.id)));
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().idempotency.recordResponse(tx, op.id, 201, { id: vm.id }));
    expect((await stamps('idempotency_keys', claim.id)).updated).toBe(at(120_000).getTime());
  });

  it('a fractional claim and its release (slot rows and the GPU row), and a sharing-mode change', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const host = await db().uow.transaction((tx) => registerHost(tx, repos().fleet, { gpus: ['h200-141gb'] }));
    const gpuId = host.gpus[0].id;
    await expectStamped('gpus', gpuId, () => db().uow.transaction((tx) => repos().fleet.setSharingMode(tx, host.id, gpuId, 'vgpu')));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner));
    db().clock.set(at(120_000));
    const claimId = ids.next();
    expect(await db().uow.transaction((tx) => repos().fleet.claimGpuSlots(tx, vm.id, { gpuId, profile: '1/4', slots: [0], sharingMode: 'vgpu' }, [claimId]))).toBe(true);
    expect(await stamps('gpu_slot_claims', claimId)).toEqual({ created: at(120_000).getTime(), updated: at(120_000).getTime() });
    expect((await stamps('gpus', gpuId)).updated).toBe(at(120_000).getTime());
    db().clock.set(at(180_000));
    await db().uow.transaction((tx) => repos().fleet.releaseGpuSlots(tx, vm.id, at(180_000)));
    expect(await stamps('gpu_slot_claims', claimId)).toEqual({ created: at(120_000).getTime(), updated: at(180_000).getTime() });
    expect((await stamps('gpus', gpuId)).updated).toBe(at(180_000).getTime());
  });

  it('a quota change, and quota consumption and release', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    await expectStamped('users', owner, () => db().uow.transaction((tx) => repos().users.setQuota(tx, owner, { gpuMilli: 4000 })));
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().users.tryConsume(tx, owner, { vcpus: 1, memoryMib: 256, gpuMilli: 1000, vms: 1 }, { vcpus: 8, memoryMib: 8192, gpus: 8, vms: 8 }));
    expect((await stamps('users', owner)).updated).toBe(at(120_000).getTime());
    db().clock.set(at(180_000));
    await db().uow.transaction((tx) => repos().users.release(tx, owner, { vcpus: 1, memoryMib: 256, gpuMilli: 1000, vms: 1 }));
    expect((await stamps('users', owner)).updated).toBe(at(180_000).getTime());
  });

  it('a host drain, and a host claim', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, repos().fleet, { gpus: ['h100-80gb'] }));
    await expectStamped('hosts', host.id, () => db().uow.transaction((tx) => repos().fleet.setHostState(tx, host.id, HostState.Draining)));
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().fleet.setHostState(tx, host.id, HostState.Active));
    await db().uow.transaction((tx) => repos().fleet.claimHost(tx, host.id, { cpuCores: 1, memoryMib: 256, diskGib: 1 }));
    expect((await stamps('hosts', host.id)).updated).toBe(at(120_000).getTime());
  });

  it('a host marked unreachable, and reachable again', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, repos().fleet));
    await expectStamped('hosts', host.id, () => db().uow.transaction((tx) => repos().fleet.markUnreachable(tx, [host.id], T1)));
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().fleet.markReachable(tx, [host.id]));
    expect((await stamps('hosts', host.id)).updated).toBe(at(120_000).getTime());
  });

  it('a GPU bound and unbound, and its allocation closed', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const host = await db().uow.transaction((tx) => registerHost(tx, repos().fleet, { gpus: ['h100-80gb'] }));
    const vm = await db().uow.transaction((tx) => insertVm(tx, repos().vms, owner, { hostId: host.id, gpuCount: 1 }));
    const gpu = host.gpus[0];
    const allocationId = ids.next();
    await expectStamped('gpus', gpu.id, () =>
      db().uow.transaction(async (tx) => {
        expect(await repos().fleet.bindGpus(tx, vm.id, host.id, [gpu.id])).toBe(1);
        await repos().fleet.insertAllocations(tx, [{ id: allocationId, gpuId: gpu.id, vmId: vm.id }]);
      }),
    );
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().fleet.unbindGpus(tx, vm.id, at(120_000)));
    expect((await stamps('gpus', gpu.id)).updated).toBe(at(120_000).getTime());
    expect(await stamps('gpu_allocations', allocationId)).toEqual({ created: T1.getTime(), updated: at(120_000).getTime() });
  });

  it('an operation claimed, its progress, and its completion', async () => {
    const op = operation();
    await db().uow.transaction((tx) => repos().ops.insert(tx, op));
    await expectStamped('operations', op.id, () => db().uow.transaction((tx) => repos().ops.claim(tx, 'worker', T1, at(90_000), 10, kind === 'postgres')));
    db().clock.set(at(120_000));
    await db().uow.transaction((tx) => repos().ops.progress(tx, op.id, 'backoff', 2, 'retrying'));
    expect((await stamps('operations', op.id)).updated).toBe(at(120_000).getTime());
    db().clock.set(at(180_000));
    await db().uow.transaction((tx) => repos().ops.complete(tx, op.id, { status: OperationStatus.Succeeded, attempts: 2 }, at(180_000), 'worker'));
    expect((await stamps('operations', op.id)).updated).toBe(at(180_000).getTime());
  });
});

reportSkippedPostgres('timestamps on every write path');
