import { OperationEntity, OperationStatus } from '../../src/operations/operation.entity';
import { DB_KINDS, deferred, reportSkippedPostgres, sleep, useTestDatabase } from './support/database';
import { T0, at, insertUser, insertVm, operation } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

const LEASE_MS = 30_000;
const MISSING_VM = '01890000-0000-7000-8000-000000000000';

describe.each(DB_KINDS)('OperationsRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  let ops: Repositories['ops'];
  let vms: Repositories['vms'];
  beforeEach(() => {
    ({ ops, vms } = repositoriesOf(db()));
  });

  /** Inserts `n` pending operations created 1 ms apart (oldest first) and returns them. */
  async function pending(n: number, overrides: Partial<OperationEntity> = {}): Promise<OperationEntity[]> {
    return db().uow.transaction(async (tx) => {
      const created: OperationEntity[] = [];
      for (let i = 0; i < n; i++) {
        const op = operation({ createdAt: at(i), updatedAt: at(i), ...overrides });
        await ops.insert(tx, op);
        created.push(op);
      }
      return created;
    });
  }

  /** Claims as the worker does: at the clock's `now`, with SKIP LOCKED on PostgreSQL. */
  const claim = (owner: string, now: Date, limit = 100, leaseUntil = new Date(now.getTime() + LEASE_MS)) => {
    db().clock.set(now);
    return db().uow.transaction((tx) => ops.claim(tx, owner, now, leaseUntil, limit, db().uow.isPostgres));
  };
  /** Records an outcome at the clock's `now`, as the worker does. */
  const complete = (id: string, completion: Parameters<typeof ops.complete>[2], now: Date, leaseOwner?: string) => {
    db().clock.set(now);
    return db().uow.transaction((tx) => ops.complete(tx, id, completion, now, leaseOwner));
  };
  const find = (id: string) => db().uow.read((tx) => ops.findById(tx, id));
  const idsOf = (records: OperationEntity[]) => records.map((r) => r.id).sort();

  it('insert/findById keeps every field, timestamps to the millisecond', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const op = operation({
      vmId: vm.id,
      userId: owner,
      status: OperationStatus.Running,
      stage: 'calling_hypervisor',
      attempts: 3,
      errorCode: 'hypervisor_unavailable',
      errorMessage: 'try again',
      hypervisorVmId: 'hv-123',
      requestId: 'req-1',
      leaseOwner: 'worker-a',
      leaseExpiresAt: at(30_001),
      startedAt: at(2),
      finishedAt: null,
      createdAt: at(1),
      updatedAt: at(3),
    });
    await db().uow.transaction((tx) => ops.insert(tx, op));
    expect(await find(op.id)).toEqual(op);
    // Without timestamps of its own, an operation is stamped with the clock's time.
    db().clock.set(at(7));
    const stamped = operation();
    await db().uow.transaction((tx) => ops.insert(tx, stamped));
    expect(await find(stamped.id)).toMatchObject({ createdAt: at(7), updatedAt: at(7) });
  });

  it('claims pending operations once, oldest first, setting the lease, attempts and started_at', async () => {
    const created = await pending(3);
    const now = at(10_000);
    const leaseUntil = at(40_000);

    const first = await claim('worker-a', now, 2, leaseUntil);
    expect(first.map((r) => r.id).sort()).toEqual([created[0].id, created[1].id].sort());
    for (const r of first) {
      expect(r).toMatchObject({
        status: OperationStatus.Running,
        leaseOwner: 'worker-a',
        leaseExpiresAt: leaseUntil,
        attempts: 1,
        startedAt: now,
        updatedAt: now,
      });
    }
    expect(await find(created[0].id)).toMatchObject({ status: OperationStatus.Running, leaseOwner: 'worker-a', attempts: 1 });

    const second = await claim('worker-b', now);
    expect(second.map((r) => r.id)).toEqual([created[2].id]);
    expect(await claim('worker-c', now)).toEqual([]);
    expect(await db().uow.read((tx) => ops.countStale(tx, now))).toBe(0);
  });

  it('a running operation is not claimable while its lease holds; once it lapses it is, and attempts goes up', async () => {
    const [op] = await pending(1);
    const firstNow = at(1_000);
    const leaseUntil = at(31_000);
    await claim('worker-a', firstNow, 10, leaseUntil);

    expect(await claim('worker-b', at(2_000))).toEqual([]);
    // The lease still holds at the very millisecond it expires (strictly earlier than now is required).
    expect(await claim('worker-b', leaseUntil)).toEqual([]);
    expect(await db().uow.read((tx) => ops.countStale(tx, leaseUntil))).toBe(0);

    const later = new Date(leaseUntil.getTime() + 1);
    expect(await db().uow.read((tx) => ops.countStale(tx, later))).toBe(1);
    const reclaimed = await claim('worker-b', later);
    expect(reclaimed).toHaveLength(1);
    expect(reclaimed[0]).toMatchObject({
      id: op.id,
      leaseOwner: 'worker-b',
      attempts: 2,
      stage: 'calling_hypervisor',
      startedAt: firstNow, // the first start is kept
      updatedAt: later,
      leaseExpiresAt: new Date(later.getTime() + LEASE_MS),
    });
  });

  it('complete() with a lease owner is fenced: the worker that lost its lease cannot record an outcome', async () => {
    const [op] = await pending(1);
    await claim('worker-a', at(1_000), 10, at(2_000));
    await claim('worker-b', at(3_000));
    const stale = await complete(op.id, { status: OperationStatus.Failed, attempts: 1, errorCode: 'x' }, at(4_000), 'worker-a');
    expect(stale).toBe(false);
    expect(await db().uow.read((tx) => ops.findById(tx, op.id))).toMatchObject({ status: 'running', leaseOwner: 'worker-b', updatedAt: at(3_000) });
    const current = await complete(op.id, { status: OperationStatus.Succeeded, attempts: 2 }, at(5_000), 'worker-b');
    expect(current).toBe(true);
    expect(await db().uow.read((tx) => ops.findById(tx, op.id))).toMatchObject({ status: 'succeeded', leaseOwner: null, attempts: 2 });
    // Once finished, not even the owner can record a second outcome.
    expect(await complete(op.id, { status: OperationStatus.Failed, attempts: 3 }, at(6_000), 'worker-b')).toBe(false);
    expect(await db().uow.read((tx) => ops.findById(tx, op.id))).toMatchObject({ status: 'succeeded', updatedAt: at(5_000) });
  });

  it("renewLeases extends only this owner's running leases", async () => {
    const created = await pending(3);
    const now = at(1_000);
    const a = await claim('worker-a', now, 2);
    const b = await claim('worker-b', now, 1);
    // A finished operation that still names worker-a must not be touched.
    const [finished] = await pending(1, {
      status: OperationStatus.Succeeded,
      stage: 'done',
      leaseOwner: 'worker-a',
      leaseExpiresAt: at(5),
      finishedAt: at(5),
    });

    const extended = at(90_000);
    db().clock.set(at(60_000));
    expect(await db().uow.transaction((tx) => ops.renewLeases(tx, 'worker-a', extended))).toBe(2);

    for (const r of a) expect(await find(r.id)).toMatchObject({ leaseExpiresAt: extended, updatedAt: at(60_000) });
    expect(await find(b[0].id)).toMatchObject({ leaseExpiresAt: new Date(now.getTime() + LEASE_MS), updatedAt: now });
    expect(await find(finished.id)).toMatchObject({ leaseExpiresAt: at(5), updatedAt: at(0) });
    expect(created).toHaveLength(3);
    // worker-b's lapsed lease is claimable; worker-a's renewed ones are not.
    const afterB = new Date(now.getTime() + LEASE_MS + 1);
    expect(idsOf(await claim('worker-c', afterB))).toEqual([b[0].id]);
    expect(await db().uow.transaction((tx) => ops.renewLeases(tx, 'nobody', extended))).toBe(0);
  });

  it('complete() finishes the operation and clears its lease, so it is never claimed again', async () => {
    const [ok, bad] = await pending(2);
    await claim('worker-a', at(1_000));
    const done = at(2_000);
    db().clock.set(done);
    await db().uow.transaction(async (tx) => {
      await ops.complete(tx, ok.id, { status: OperationStatus.Succeeded, attempts: 1 }, done);
      await ops.complete(tx, bad.id, { status: OperationStatus.Failed, attempts: 4, errorCode: 'boom', errorMessage: 'it broke' }, done);
    });

    expect(await find(ok.id)).toMatchObject({
      status: OperationStatus.Succeeded,
      stage: 'done',
      attempts: 1,
      errorCode: null,
      errorMessage: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      finishedAt: done,
      updatedAt: done,
      startedAt: at(1_000),
    });
    expect(await find(bad.id)).toMatchObject({
      status: OperationStatus.Failed,
      attempts: 4,
      errorCode: 'boom',
      errorMessage: 'it broke',
      leaseOwner: null,
      leaseExpiresAt: null,
    });
    expect(await claim('worker-b', at(10_000_000))).toEqual([]);
    expect(await db().uow.read((tx) => ops.countOpen(tx))).toEqual([]);
  });

  it('countOpen counts pending and running operations by status, countWaiting those in the capacity queue; neither a finished one', async () => {
    await pending(2);
    await pending(1, { status: OperationStatus.WaitingForCapacity, stage: 'waiting_for_capacity', queueKey: 'h100-80gb|*', deadlineAt: at(60_000) });
    await pending(1, { status: OperationStatus.Succeeded, stage: 'done', finishedAt: at(5) });
    await claim('worker-a', at(1_000), 1);
    const counts = await db().uow.read((tx) => ops.countOpen(tx));
    expect(counts.sort((a, b) => a.status.localeCompare(b.status))).toEqual([
      { status: OperationStatus.Pending, count: 1 },
      { status: OperationStatus.Running, count: 1 },
    ]);
    expect(await db().uow.read((tx) => ops.countWaiting(tx))).toBe(1);
  });

  it('releaseAllLeases makes every open operation claimable at once, and leaves finished ones alone', async () => {
    const created = await pending(3);
    const [finished] = await pending(1, { status: OperationStatus.Succeeded, stage: 'done', finishedAt: at(1) });
    const now = at(1_000);
    expect(await claim('worker-a', now, 2)).toHaveLength(2);

    expect(await db().uow.transaction((tx) => ops.releaseAllLeases(tx))).toBe(3);

    const reclaimed = await claim('worker-b', now);
    expect(idsOf(reclaimed)).toEqual(idsOf(created));
    expect(reclaimed.find((r) => r.id === created[0].id)!.attempts).toBe(2);
    expect(reclaimed.find((r) => r.id === created[2].id)!.attempts).toBe(1);
    expect((await find(finished.id))!.status).toBe(OperationStatus.Succeeded);
  });

  it('listByVm pages newest first by id; findOpenForVm finds the unfinished one; listByOwner sees only that owner', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const stranger = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const other = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const strangers = await db().uow.transaction((tx) => insertVm(tx, vms, stranger));
    const mine = await pending(5, { vmId: vm.id, status: OperationStatus.Succeeded, stage: 'done' });
    await pending(1, { vmId: other.id, status: OperationStatus.Failed, stage: 'done' });
    await pending(1, { vmId: other.id });
    await pending(1, { vmId: strangers.id });
    await pending(1); // no VM: an orphan cleanup, on nobody's VM
    const [open] = await pending(1, { vmId: vm.id });
    const newestFirst = [open, ...mine.slice().reverse()].map((o) => o.id);

    const page1 = await db().uow.read((tx) => ops.listByVm(tx, vm.id, null, 4));
    const page2 = await db().uow.read((tx) => ops.listByVm(tx, vm.id, page1[3].id, 4));
    expect([...page1, ...page2].map((o) => o.id)).toEqual(newestFirst);
    expect(page2).toHaveLength(2);
    expect((await db().uow.read((tx) => ops.findOpenForVm(tx, vm.id)))?.id).toBe(open.id);
    const byOwner = await db().uow.read((tx) => ops.listByOwner(tx, owner, null, 100));
    expect(byOwner).toHaveLength(8);
    expect(byOwner.every((o) => o.vmId === vm.id || o.vmId === other.id)).toBe(true);
    expect(await db().uow.read((tx) => ops.findOpenForVm(tx, strangers.id))).not.toBeNull();
    expect(await db().uow.read((tx) => ops.findOpenForVm(tx, MISSING_VM))).toBeNull();
    // An admin (no owner) sees every operation, orphan cleanups included.
    expect(await db().uow.read((tx) => ops.listByOwner(tx, null, null, 100))).toHaveLength(10);
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: a second claimer skips the rows the first has locked (SKIP LOCKED) and takes the rest', async () => {
      const created = await pending(10);
      const now = at(1_000);
      const aClaimed = deferred<OperationEntity[]>();
      const bDone = deferred<void>();

      const a = db().uow.transaction(async (tx) => {
        const rows = await ops.claim(tx, 'worker-a', now, at(60_000), 5, true);
        aClaimed.resolve(rows);
        // Hold the row locks until B has finished (or clearly blocked on them).
        const released = await Promise.race([bDone.promise.then(() => 'after B' as const), sleep(3_000).then(() => 'timed out' as const)]);
        return { rows, released };
      });
      await aClaimed.promise;
      const b = claim('worker-b', now, 5).finally(() => bDone.resolve());

      const [{ rows: fromA, released }, fromB] = await Promise.all([a, b]);
      expect(released).toBe('after B'); // B skipped A's locked rows instead of waiting for A's commit
      expect(fromA).toHaveLength(5);
      expect(fromB).toHaveLength(5);
      const overlap = fromA.filter((r) => fromB.some((s) => s.id === r.id));
      expect(overlap).toEqual([]);
      expect([...idsOf(fromA), ...idsOf(fromB)].sort()).toEqual(idsOf(created));
      expect(fromB.every((r) => r.leaseOwner === 'worker-b')).toBe(true);
      expect(fromA.every((r) => r.leaseOwner === 'worker-a')).toBe(true);
    });

    it('PostgreSQL only: four claimers in parallel get disjoint sets that together cover every pending operation', async () => {
      const created = await pending(20);
      const now = at(1_000);
      const batches = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((owner) => claim(owner, now, 5)));
      const all = batches.flat();
      expect(all.map((r) => r.id).sort()).toEqual(idsOf(created));
      expect(new Set(all.map((r) => r.id)).size).toBe(20);
      for (const [i, batch] of batches.entries()) {
        expect(batch.every((r) => r.leaseOwner === `w${i + 1}` && r.attempts === 1)).toBe(true);
        const stored = await Promise.all(batch.map((r) => find(r.id)));
        expect(stored.every((s) => s!.leaseOwner === `w${i + 1}`)).toBe(true);
      }
    });
  }

  it('timestamps survive as UTC instants (T0 is not midnight, has milliseconds)', async () => {
    const [op] = await pending(1);
    expect((await find(op.id))!.createdAt.toISOString()).toBe(T0.toISOString());
  });
});

reportSkippedPostgres('OperationsRepository');
