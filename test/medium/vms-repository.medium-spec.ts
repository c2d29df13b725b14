import type { Tx } from '../../src/database/unit-of-work';
import { OperationEntity } from '../../src/operations/operation.entity';
import { UserEntity } from '../../src/users/user.entity';
import { VmEntity, VmStatus } from '../../src/vms/vm.entity';
import { VmEvent, isAllowed, transitionOf } from '../../src/vms/vm-state-machine';
import type { VmListFilter } from '../../src/vms/vms.repository';
import { DB_KINDS, one, reportSkippedPostgres, rows, scalar, useTestDatabase } from './support/database';
import { at, insertUser, insertVm, operation, registerHost, vmEntity } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

const MISSING_ID = '01890000-0000-7000-8000-000000000000';

describe.each(DB_KINDS)('VmsRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  let vms: Repositories['vms'];
  let fleet: Repositories['fleet'];
  let ops: Repositories['ops'];
  let users: Repositories['users'];
  beforeEach(() => {
    ({ vms, fleet, ops, users } = repositoriesOf(db()));
  });

  const find = (id: string) => db().uow.read((tx) => vms.findById(tx, id));
  const list = (filter: Partial<VmListFilter>) =>
    db().uow.read((tx) => vms.list(tx, { ownerId: null, status: null, label: null, beforeId: null, limit: 100, ...filter }));
  const namesOf = (found: VmEntity[]) => found.map((v) => v.name);

  let owner: string;
  beforeEach(async () => {
    owner = await db().uow.transaction((tx) => insertUser(tx));
  });

  it('insert/findById round-trips every field: labels in order, the region on the VM, the host through its relation, timestamps to the millisecond in UTC', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'gpu-node-7', region: 'ap-south' }));
    const vm = vmEntity(owner, {
      name: 'trainer',
      cpuCores: 48,
      memory: 393_216,
      diskSize: 2048,
      publicIp: '2001:db8::1',
      labels: ['team-ml', 'gpu', 'team-ml'],
      status: VmStatus.Failed,
      statusReason: 'hypervisor said "no" — ünïcødé',
      hostId: host.id,
      region: 'ap-south',
      gpuCount: 8,
      gpuModel: 'h100-80gb',
      hypervisorId: 'hv-vm-0042',
      image: 'debian-12.qcow2',
      userData: '#cloud-config\n# ünïcødé\n',
      sshKeys: [{ name: 'laptop', fingerprint: 'SHA256:abc', publicKey: 'ssh-ed25519 AAAA me@x' }],
      releasedAt: new Date('2031-12-31T23:59:59.999Z'),
      deletedAt: new Date('2032-01-01T00:00:00.001Z'),
      createdAt: new Date('2031-06-15T12:34:56.789Z'),
      updatedAt: new Date('2031-06-15T12:34:56.790Z'),
    });
    await db().uow.transaction((tx) => vms.insert(tx, vm));

    const found = await find(vm.id);
    expect(found).toEqual(vm);
    expect(found!.createdAt.toISOString()).toBe('2031-06-15T12:34:56.789Z');
    expect(found!.host).toBeUndefined(); // the fleet is joined only when asked for
    const withHost = await db().uow.read((tx) => vms.findById(tx, vm.id, { host: true }));
    expect(withHost!.host).toMatchObject({ id: host.id, name: 'gpu-node-7', region: 'ap-south' });
    // vm_labels holds each label once, for filtering.
    const labels = await db().uow.read((tx) => rows<{ label: string }>(tx, 'SELECT label FROM vm_labels WHERE vm_id = $1 ORDER BY label', [vm.id]));
    expect(labels.map((l) => l.label)).toEqual(['gpu', 'team-ml']);
    expect(await find(MISSING_ID)).toBeNull();
  });

  it('list() reads every field of a page exactly as findById reads it, with and without the host', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'page-host', region: 'eu-north' }));
    const full = vmEntity(owner, {
      name: 'full',
      publicIp: '198.51.100.9',
      labels: ['b', 'a', 'b'],
      status: VmStatus.Created,
      statusReason: "quote ' and \\ backslash, ünïcødé, emoji 🚀",
      hostId: host.id,
      region: 'eu-north',
      gpuCount: 2,
      gpuModel: 'a100-80gb',
      hypervisorId: 'hv-1',
      image: 'debian-12',
      userData: '#cloud-config\n{"json": [1, 2]}\n',
      sshKeys: [{ name: 'k', fingerprint: 'SHA256:x', publicKey: 'ssh-ed25519 AAAA k@x' }],
      createdAt: new Date('2031-06-15T12:34:56.789Z'),
      updatedAt: new Date('2031-06-15T12:34:56.790Z'),
    });
    const sparse = vmEntity(owner, { name: 'sparse', labels: [], status: VmStatus.Provisioning, hostId: null, region: null, image: null, userData: null, sshKeys: [] });
    await db().uow.transaction(async (tx) => {
      await vms.insert(tx, full);
      await vms.insert(tx, sparse);
    });
    for (const withHost of [false, true]) {
      const page = await db().uow.read((tx) => vms.list(tx, { ownerId: owner, status: null, label: null, beforeId: null, limit: 10 }, { host: withHost }));
      const single = await Promise.all(page.map((vm) => db().uow.read((tx) => vms.findById(tx, vm.id, { host: withHost }))));
      expect(page.map((vm) => vm.name).sort()).toEqual(['full', 'sparse']);
      expect(page).toEqual(single);
      if (withHost) expect(page.find((vm) => vm.name === 'full')!.host).toMatchObject({ id: host.id, name: 'page-host' });
    }
  });

  it("reads a VM, its host, its operation and its owner exactly as TypeORM's own findOne does, in a process whose time zone is not UTC", async () => {
    // The tiers run at +05:30 (test/support/global-setup.ts): a timestamp read as local time would be off by hours.
    expect(new Date('2031-06-15T12:00:00Z').getTimezoneOffset()).not.toBe(0);
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'tz-host', region: 'ap-south' }));
    const vm = vmEntity(owner, {
      labels: ['x'],
      status: VmStatus.Created,
      hostId: host.id,
      region: 'ap-south',
      releasedAt: new Date('2031-12-31T23:59:59.999Z'),
      createdAt: new Date('2031-06-15T12:34:56.789Z'),
      updatedAt: new Date('2031-06-15T19:04:56.001Z'),
    });
    const op = operation({ vmId: vm.id, userId: owner, startedAt: new Date('2031-06-15T12:34:57.002Z'), leaseExpiresAt: new Date('2031-06-15T12:35:57.003Z') });
    await db().uow.transaction(async (tx) => {
      await vms.insert(tx, vm);
      await ops.insert(tx, op);
    });
    const ours = await db().uow.read(async (tx) => ({
      vm: await vms.findById(tx, vm.id, { host: true }),
      op: await ops.findById(tx, op.id),
      user: await users.findById(tx, owner),
    }));
    const typeorms = await db().uow.read(async (tx) => ({
      vm: await tx.getRepository(VmEntity).findOne({ where: { id: vm.id }, relations: { host: true } }),
      op: await tx.getRepository(OperationEntity).findOneBy({ id: op.id }),
      user: await tx.getRepository(UserEntity).findOneBy({ id: owner }),
    }));
    expect(ours).toEqual(typeorms);
    expect(ours.vm!.createdAt.toISOString()).toBe('2031-06-15T12:34:56.789Z');
    expect(ours.vm!.updatedAt.toISOString()).toBe('2031-06-15T19:04:56.001Z');
    expect(ours.vm!.host!.createdAt).toEqual(typeorms.vm!.host!.createdAt);
    expect(ours.op!.leaseExpiresAt!.toISOString()).toBe('2031-06-15T12:35:57.003Z');
  });

  (kind === 'postgres' ? it : it.skip)('on PostgreSQL a statement is prepared once per connection and then only executed', async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const preparedOn = async (tx: Tx) =>
      new Map(
        (
          await rows<{ name: string; statement: string; runs: string }>(
            tx,
            "SELECT name, statement, generic_plans + custom_plans AS runs FROM pg_prepared_statements WHERE name LIKE 'vmplane\\_%'",
          )
        ).map((r) => [r.name, { statement: r.statement, runs: Number(r.runs) }]),
      );
    // One transaction: one pooled connection, whose prepared statements pg_prepared_statements lists.
    const [before, after] = await db().uow.transaction(async (tx) => {
      const seen = await preparedOn(tx);
      for (let i = 0; i < 3; i++) expect((await vms.findById(tx, vm.id))?.id).toBe(vm.id);
      return [seen, await preparedOn(tx)];
    });
    const ran = [...after].filter(([name, { runs }]) => runs !== (before.get(name)?.runs ?? 0));
    expect(ran).toHaveLength(1);
    const [[name, read]] = ran;
    expect(read.statement).toContain('FROM "vms"');
    expect(read.runs - (before.get(name)?.runs ?? 0)).toBe(3);
  });

  it("findVisible() returns the VM to its owner and to an admin (no owner), and null to another user, as if it did not exist", async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const stranger = await db().uow.transaction((tx) => insertUser(tx));
    const visible = (ownerId: string | null) => db().uow.read((tx) => vms.findVisible(tx, vm.id, ownerId));
    expect((await visible(owner))?.id).toBe(vm.id);
    expect((await visible(null))?.id).toBe(vm.id);
    expect(await visible(stranger)).toBeNull();
    expect(await db().uow.read((tx) => vms.findVisible(tx, MISSING_ID, null))).toBeNull();
    expect(await db().uow.read((tx) => vms.ownerOf(tx, vm.id))).toBe(owner);
    expect(await db().uow.read((tx) => vms.ownerOf(tx, MISSING_ID))).toBeNull();
  });

  it('stores timestamps as the intended UTC instant, as the database itself reads them', async () => {
    // Jest sandboxes process.env, so the process time zone cannot be varied here; instead check what the database stored.
    const createdAt = new Date('2031-03-30T01:30:00.250Z');
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { createdAt, updatedAt: createdAt }));
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet)); // stamped by the subscriber from the test clock
    const sql =
      kind === 'postgres'
        ? `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS text FROM %s WHERE id = $1`
        : `SELECT created_at AS text FROM %s WHERE id = $1`;
    const stored = await db().uow.read(async (tx) => ({
      vm: (await one<{ text: string }>(tx, sql.replace('%s', 'vms'), [vm.id]))!.text,
      host: (await one<{ text: string }>(tx, sql.replace('%s', 'hosts'), [host.id]))!.text,
    }));
    // On SQLite both writers must use the same text format, or lexical comparisons (lease expiry, purges) break.
    expect(stored).toEqual({ vm: '2031-03-30 01:30:00.250', host: '2031-03-04 05:06:07.089' });
    if (kind === 'postgres') {
      const zone = await db().uow.read((tx) => one<{ TimeZone: string }>(tx, 'SHOW timezone'));
      expect(zone).toEqual({ TimeZone: 'UTC' });
    }
  });

  it('list() returns newest first by id and pages with beforeId (keyset) without gaps or repeats', async () => {
    const created: VmEntity[] = [];
    await db().uow.transaction(async (tx) => {
      for (let i = 0; i < 7; i++) created.push(await insertVm(tx, vms, owner, { name: `vm-${i}` }));
    });
    const newestFirst = created.map((v) => v.name).reverse();

    const page1 = await list({ limit: 3 });
    const page2 = await list({ limit: 3, beforeId: page1[2].id });
    const page3 = await list({ limit: 3, beforeId: page2[2].id });
    expect([namesOf(page1), namesOf(page2), namesOf(page3)]).toEqual([
      newestFirst.slice(0, 3),
      newestFirst.slice(3, 6),
      newestFirst.slice(6),
    ]);
    expect(await list({ limit: 3, beforeId: page3[0].id })).toEqual([]);
  });

  it('list() hides deleted VMs and admission refusals (failed, never placed) unless asked for by status, and filters by any status', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet));
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, vms, owner, { name: 'live', status: VmStatus.Created, hostId: host.id });
      await insertVm(tx, vms, owner, { name: 'gone', status: VmStatus.Deleted, deletedAt: at(5), hostId: host.id });
      await insertVm(tx, vms, owner, { name: 'broken', status: VmStatus.Failed, hostId: host.id });
      await insertVm(tx, vms, owner, { name: 'refused', status: VmStatus.Failed, hostId: null, releasedAt: at(1) });
    });
    expect(namesOf(await list({})).sort()).toEqual(['broken', 'live']);
    expect(namesOf(await list({ status: VmStatus.Deleted }))).toEqual(['gone']);
    expect(namesOf(await list({ status: VmStatus.Failed }))).toEqual(['refused', 'broken']);
    expect(await list({ status: VmStatus.Deleting })).toEqual([]);
  });

  it('list() filters by label (through vm_labels) and by owner, alone and combined with paging', async () => {
    const other = await db().uow.transaction((tx) => insertUser(tx));
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, vms, owner, { name: 'a1', labels: ['gpu', 'prod'] });
      await insertVm(tx, vms, owner, { name: 'a2', labels: ['prod'] });
      await insertVm(tx, vms, other, { name: 'b1', labels: ['gpu'] });
      await insertVm(tx, vms, owner, { name: 'a3', labels: ['gpu'] });
      await insertVm(tx, vms, other, { name: 'b2', labels: [] });
      await insertVm(tx, vms, owner, { name: 'a4-deleted', labels: ['gpu'], status: VmStatus.Deleted });
    });

    expect(namesOf(await list({ label: 'gpu' }))).toEqual(['a3', 'b1', 'a1']);
    expect(namesOf(await list({ label: 'prod' }))).toEqual(['a2', 'a1']);
    expect(await list({ label: 'gp' })).toEqual([]); // exact match, not a prefix
    expect(namesOf(await list({ ownerId: other }))).toEqual(['b2', 'b1']);
    expect(namesOf(await list({ ownerId: owner, label: 'gpu' }))).toEqual(['a3', 'a1']);
    const first = await list({ ownerId: owner, label: 'gpu', limit: 1 });
    expect(namesOf(first)).toEqual(['a3']);
    // Same query shape (cached SQL) with different values.
    expect(namesOf(await list({ ownerId: owner, label: 'gpu', limit: 1, beforeId: first[0].id }))).toEqual(['a1']);
    expect(namesOf(await list({ ownerId: other, label: 'gpu', limit: 1, beforeId: first[0].id }))).toEqual(['b1']);
    expect(namesOf(await list({ ownerId: owner, label: 'gpu', status: VmStatus.Deleted }))).toEqual(['a4-deleted']);
  });

  it('transition() applies only from a status the state machine allows, sets exactly the given fields and updated_at, and reports a lost race', async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { status: VmStatus.Provisioning, statusReason: 'queued' }));

    db().clock.set(at(10));
    const refused = await db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.DeleteRequested));
    expect(refused).toEqual({ applied: false });
    expect(await find(vm.id)).toEqual(vm);

    db().clock.set(at(20));
    expect(await db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.Provisioned, { hypervisorId: 'hv-1', statusReason: null }))).toEqual({
      applied: true,
      updatedAt: at(20),
    });
    expect(await find(vm.id)).toEqual({ ...vm, status: VmStatus.Created, hypervisorId: 'hv-1', statusReason: null, updatedAt: at(20) });

    // Fields not given are left alone.
    db().clock.set(at(25));
    expect(await db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.DeleteRequested))).toEqual({ applied: true, updatedAt: at(25) });
    db().clock.set(at(31));
    expect(await db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.Deleted, { deletedAt: at(30) }))).toEqual({
      applied: true,
      updatedAt: at(31),
    });
    expect(await find(vm.id)).toEqual({
      ...vm,
      status: VmStatus.Deleted,
      hypervisorId: 'hv-1',
      statusReason: null,
      deletedAt: at(30),
      updatedAt: at(31),
    });
    db().clock.set(at(40));
    expect(await db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.FoundMissing))).toEqual({ applied: false });
    expect(await db().uow.transaction((tx) => vms.transition(tx, MISSING_ID, VmEvent.FoundMissing))).toEqual({ applied: false });
    expect((await find(vm.id))!.updatedAt).toEqual(at(31));
  });

  it('transition() guards every event with exactly the from-statuses of the state machine', async () => {
    const cases = Object.values(VmEvent).flatMap((event) => Object.values(VmStatus).map((status) => ({ event, status })));
    const outcomes = await db().uow.transaction(async (tx) => {
      const seen = [];
      for (const { event, status } of cases) {
        const vm = await insertVm(tx, vms, owner, { status });
        const result = await vms.transition(tx, vm.id, event);
        seen.push({ event, status, applied: result.applied, now: (await vms.findById(tx, vm.id))!.status });
      }
      return seen;
    });
    const expected = cases.map(({ event, status }) => {
      const applied = isAllowed(status, event);
      return { event, status, applied, now: applied ? transitionOf(event).to : status };
    });
    expect(outcomes).toEqual(expected);
    // Every event is possible from some status, and no event is possible from every one.
    for (const event of Object.values(VmEvent)) {
      const applied = outcomes.filter((o) => o.event === event && o.applied).length;
      expect({ event, applied: applied > 0 && applied < cases.length / Object.values(VmEvent).length }).toEqual({ event, applied: true });
    }
  });

  it('transition() that gives resources back (sets releasedAt) applies only while released_at is still null', async () => {
    const fresh = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { status: VmStatus.Provisioning }));
    const released = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { status: VmStatus.Provisioning, releasedAt: at(1) }));

    db().clock.set(at(50));
    const fail = (id: string) =>
      db().uow.transaction((tx) => vms.transition(tx, id, VmEvent.ProvisionFailed, { statusReason: 'no', releasedAt: at(50) }));
    expect(await fail(fresh.id)).toEqual({ applied: true, updatedAt: at(50) });
    expect(await find(fresh.id)).toMatchObject({ status: VmStatus.Failed, statusReason: 'no', releasedAt: at(50) });
    // Already released by someone else: the whole change is refused, not only the releasedAt part.
    expect(await fail(released.id)).toEqual({ applied: false });
    expect(await find(released.id)).toEqual(released);
  });

  it('markReleased() returns true exactly once, stamps released_at and updated_at, and frees the public IP', async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { publicIp: '198.51.100.4', status: VmStatus.Created }));
    expect(await db().uow.read((tx) => vms.publicIpInUse(tx, '198.51.100.4'))).toBe(true);
    expect(await db().uow.read(async (tx) => (await vms.listLive(tx)).map((v) => v.id))).toEqual([vm.id]);

    db().clock.set(at(100));
    expect(await db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(100)))).toBe(true);
    db().clock.set(at(200));
    expect(await db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(200)))).toBe(false);
    expect(await find(vm.id)).toMatchObject({ releasedAt: at(100), updatedAt: at(100), createdAt: vm.createdAt });
    expect(await db().uow.read((tx) => vms.publicIpInUse(tx, '198.51.100.4'))).toBe(false);
    expect(await db().uow.read((tx) => vms.listLive(tx))).toEqual([]);
  });

  it('listLive() returns VMs holding resources or with work in flight, with their host', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'live-host' }));
    const live = await db().uow.transaction(async (tx) => ({
      holding: await insertVm(tx, vms, owner, { status: VmStatus.Created, hostId: host.id }),
      deleting: await insertVm(tx, vms, owner, { status: VmStatus.Deleting, releasedAt: at(1), hostId: host.id }),
      provisioning: await insertVm(tx, vms, owner, { status: VmStatus.Provisioning, releasedAt: at(1) }),
    }));
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, vms, owner, { status: VmStatus.Deleted, releasedAt: at(1) });
      await insertVm(tx, vms, owner, { status: VmStatus.Failed, releasedAt: at(1) });
    });
    const found = await db().uow.read((tx) => vms.listLive(tx));
    expect(found.map((v) => v.id).sort()).toEqual([live.holding.id, live.deleting.id, live.provisioning.id].sort());
    expect(found.find((v) => v.id === live.holding.id)!.host).toMatchObject({ name: 'live-host' });
  });

  it('countByStatus() counts per status', async () => {
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, vms, owner, { status: VmStatus.Created });
      await insertVm(tx, vms, owner, { status: VmStatus.Created });
      await insertVm(tx, vms, owner, { status: VmStatus.Failed });
    });
    const counts = await db().uow.read((tx) => vms.countByStatus(tx));
    expect(counts.map((c) => ({ status: c.status, count: Number(c.count) })).sort((a, b) => a.status.localeCompare(b.status))).toEqual([
      { status: VmStatus.Created, count: 2 },
      { status: VmStatus.Failed, count: 1 },
    ]);
    // CAST(... AS INTEGER) should come back as a JS number on both drivers.
    expect(counts.every((c) => typeof c.count === 'number')).toBe(true);
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: concurrent markReleased / transition on the same VM succeed exactly once; the others see a lost race', async () => {
      const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { status: VmStatus.Created }));
      const released = await Promise.all(Array.from({ length: 10 }, (_, i) => db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(i)))));
      expect(released.filter(Boolean)).toHaveLength(1);
      const moved = await Promise.all(
        Array.from({ length: 10 }, () => db().uow.transaction((tx) => vms.transition(tx, vm.id, VmEvent.DeleteRequested))),
      );
      expect(moved.filter((r) => r.applied)).toHaveLength(1);
      expect(await db().uow.read((tx) => scalar(tx, `SELECT COUNT(*) AS n FROM vms WHERE status = 'deleting'`))).toBe(1);
    });
  }
});

reportSkippedPostgres('VmsRepository');
