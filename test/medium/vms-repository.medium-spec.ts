import { FleetRepository } from '../../src/fleet/fleet.repository';
import { VmStatus } from '../../src/vms/vm.entity';
import type { VmView } from '../../src/vms/vm-view';
import { VmListFilter, VmsRepository } from '../../src/vms/vms.repository';
import { DB_KINDS, reportSkippedPostgres, scalar, useTestDatabase } from './support/database';
import { at, insertUser, insertVm, registerHost, vmView } from './support/fixtures';

const MISSING_ID = '01890000-0000-7000-8000-000000000000';

describe.each(DB_KINDS)('VmsRepository on %s', (kind) => {
  const db = useTestDatabase(kind);
  const vms = new VmsRepository();
  const fleet = new FleetRepository();

  const find = (id: string) => db().uow.read((tx) => vms.findById(tx, id));
  const list = (filter: Partial<VmListFilter>) =>
    db().uow.read((tx) => vms.list(tx, { ownerId: null, status: null, label: null, beforeId: null, limit: 100, ...filter }));
  const namesOf = (rows: VmView[]) => rows.map((v) => v.name);

  let owner: string;
  beforeEach(async () => {
    owner = await db().uow.transaction((tx) => insertUser(tx));
  });

  it('insert/findById round-trips every field: labels in order, host name and region, timestamps to the millisecond in UTC', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { name: 'gpu-node-7', region: 'ap-south' }));
    const vm = vmView(owner, {
      name: 'trainer',
      cpuCores: 48,
      memory: 393_216,
      diskSize: 2048,
      publicIp: '2001:db8::1',
      labels: ['team-ml', 'gpu', 'team-ml'],
      status: VmStatus.Failed,
      statusReason: 'hypervisor said "no" — ünïcødé',
      hostId: host.id,
      hostName: 'gpu-node-7',
      region: 'ap-south',
      gpuCount: 8,
      gpuModel: 'h100-80gb',
      hypervisorId: 'hv-vm-0042',
      releasedAt: new Date('2031-12-31T23:59:59.999Z'),
      deletedAt: new Date('2032-01-01T00:00:00.001Z'),
      createdAt: new Date('2031-06-15T12:34:56.789Z'),
      updatedAt: new Date('2031-06-15T12:34:56.790Z'),
    });
    await db().uow.transaction((tx) => vms.insert(tx, vm));

    const found = await find(vm.id);
    expect(found).toEqual(vm);
    expect(found!.createdAt.toISOString()).toBe('2031-06-15T12:34:56.789Z');
    // vm_labels holds each label once, for filtering.
    const labels = await db().uow.read((tx) =>
      tx.rows<{ label: string }>('SELECT label FROM vm_labels WHERE vm_id = $1 ORDER BY label', [vm.id]),
    );
    expect(labels.map((l) => l.label)).toEqual(['gpu', 'team-ml']);
    expect(await find(MISSING_ID)).toBeNull();
    expect((await db().uow.read((tx) => vms.findByIds(tx, [vm.id]))).map((v) => v.id)).toEqual([vm.id]);
  });

  it('stores timestamps as the intended UTC instant, as the database itself reads them', async () => {
    // Jest sandboxes process.env, so the process time zone cannot be varied here; instead check what the database stored.
    const createdAt = new Date('2031-03-30T01:30:00.250Z');
    const vm = await db().uow.transaction((tx) => insertVm(tx, owner, { createdAt, updatedAt: createdAt }));
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet)); // written by TypeORM, not by hand
    const sql =
      kind === 'postgres'
        ? `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS text FROM %s WHERE id = $1`
        : `SELECT created_at AS text FROM %s WHERE id = $1`;
    const stored = await db().uow.read(async (tx) => ({
      vm: (await tx.one<{ text: string }>(sql.replace('%s', 'vms'), [vm.id]))!.text,
      host: (await tx.one<{ text: string }>(sql.replace('%s', 'hosts'), [host.id]))!.text,
    }));
    // On SQLite both writers must use the same text format, or lexical comparisons (lease expiry, purges) break.
    expect(stored).toEqual({ vm: '2031-03-30 01:30:00.250', host: '2031-03-04 05:06:07.089' });
    if (kind === 'postgres') {
      const zone = await db().uow.read((tx) => tx.one<{ TimeZone: string }>('SHOW timezone'));
      expect(zone).toEqual({ TimeZone: 'UTC' });
    }
  });

  it('list() returns newest first by id and pages with beforeId (keyset) without gaps or repeats', async () => {
    const created: VmView[] = [];
    await db().uow.transaction(async (tx) => {
      for (let i = 0; i < 7; i++) created.push(await insertVm(tx, owner, { name: `vm-${i}` }));
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

  it('list() hides deleted VMs unless asked for status=deleted, and filters by any status', async () => {
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, owner, { name: 'live', status: VmStatus.Created });
      await insertVm(tx, owner, { name: 'gone', status: VmStatus.Deleted, deletedAt: at(5) });
      await insertVm(tx, owner, { name: 'broken', status: VmStatus.Failed });
    });
    expect(namesOf(await list({})).sort()).toEqual(['broken', 'live']);
    expect(namesOf(await list({ status: VmStatus.Deleted }))).toEqual(['gone']);
    expect(namesOf(await list({ status: VmStatus.Failed }))).toEqual(['broken']);
    expect(await list({ status: VmStatus.Deleting })).toEqual([]);
  });

  it('list() filters by label (through vm_labels) and by owner, alone and combined with paging', async () => {
    const other = await db().uow.transaction((tx) => insertUser(tx));
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, owner, { name: 'a1', labels: ['gpu', 'prod'] });
      await insertVm(tx, owner, { name: 'a2', labels: ['prod'] });
      await insertVm(tx, other, { name: 'b1', labels: ['gpu'] });
      await insertVm(tx, owner, { name: 'a3', labels: ['gpu'] });
      await insertVm(tx, other, { name: 'b2', labels: [] });
      await insertVm(tx, owner, { name: 'a4-deleted', labels: ['gpu'], status: VmStatus.Deleted });
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

  it('transition() applies only from an expected status, sets exactly the given fields, and reports false otherwise', async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, owner, { status: VmStatus.Provisioning, statusReason: 'queued' }));

    const refused = await db().uow.transaction((tx) =>
      vms.transition(tx, vm.id, [VmStatus.Created, VmStatus.Failed], { status: VmStatus.Deleting }, at(10)),
    );
    expect(refused).toBe(false);
    expect(await find(vm.id)).toEqual(vm);

    expect(
      await db().uow.transaction((tx) =>
        vms.transition(tx, vm.id, [VmStatus.Provisioning], { status: VmStatus.Created, hypervisorId: 'hv-1', statusReason: null }, at(20)),
      ),
    ).toBe(true);
    expect(await find(vm.id)).toEqual({ ...vm, status: VmStatus.Created, hypervisorId: 'hv-1', statusReason: null, updatedAt: at(20) });

    // Fields not given are left alone.
    expect(
      await db().uow.transaction((tx) =>
        vms.transition(tx, vm.id, [VmStatus.Failed, VmStatus.Created], { status: VmStatus.Deleted, deletedAt: at(30) }, at(31)),
      ),
    ).toBe(true);
    expect(await find(vm.id)).toEqual({
      ...vm,
      status: VmStatus.Deleted,
      hypervisorId: 'hv-1',
      statusReason: null,
      deletedAt: at(30),
      updatedAt: at(31),
    });
    expect(await db().uow.transaction((tx) => vms.transition(tx, vm.id, [VmStatus.Created], { status: VmStatus.Failed }, at(40)))).toBe(false);
    expect(await db().uow.transaction((tx) => vms.transition(tx, MISSING_ID, [VmStatus.Created], { status: VmStatus.Failed }, at(40)))).toBe(false);
  });

  it('markReleased() returns true exactly once, stamps released_at, and frees the public IP', async () => {
    const vm = await db().uow.transaction((tx) => insertVm(tx, owner, { publicIp: '198.51.100.4', status: VmStatus.Created }));
    expect(await db().uow.read((tx) => vms.publicIpInUse(tx, '198.51.100.4'))).toBe(true);
    expect(await db().uow.read(async (tx) => (await vms.listLive(tx)).map((v) => v.id))).toEqual([vm.id]);

    expect(await db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(100)))).toBe(true);
    expect(await db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(200)))).toBe(false);
    expect((await find(vm.id))!.releasedAt).toEqual(at(100));
    expect(await db().uow.read((tx) => vms.publicIpInUse(tx, '198.51.100.4'))).toBe(false);
    expect(await db().uow.read((tx) => vms.listLive(tx))).toEqual([]);
  });

  it('countByStatus() counts per status', async () => {
    await db().uow.transaction(async (tx) => {
      await insertVm(tx, owner, { status: VmStatus.Created });
      await insertVm(tx, owner, { status: VmStatus.Created });
      await insertVm(tx, owner, { status: VmStatus.Failed });
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
    it('PostgreSQL only: concurrent markReleased / transition on the same VM succeed exactly once', async () => {
      const vm = await db().uow.transaction((tx) => insertVm(tx, owner, { status: VmStatus.Created }));
      const released = await Promise.all(Array.from({ length: 10 }, (_, i) => db().uow.transaction((tx) => vms.markReleased(tx, vm.id, at(i)))));
      expect(released.filter(Boolean)).toHaveLength(1);
      const moved = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          db().uow.transaction((tx) => vms.transition(tx, vm.id, [VmStatus.Created], { status: VmStatus.Deleting }, at(100 + i))),
        ),
      );
      expect(moved.filter(Boolean)).toHaveLength(1);
      expect(await db().uow.read((tx) => scalar(tx, `SELECT COUNT(*) AS n FROM vms WHERE status = 'deleting'`))).toBe(1);
    });
  }
});

reportSkippedPostgres('VmsRepository');
