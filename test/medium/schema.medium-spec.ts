import { constraintViolation } from '../../src/database/constraint-violation';
import { ENTITIES, MIGRATIONS } from '../../src/database/data-source-options';
import { VmRegionOneOpenOperation1764950000000 } from '../../src/database/migrations/1764950000000-vm-region-one-open-operation';
import { HostAdmin1765350000000 } from '../../src/database/migrations/1765350000000-host-admin';
import { HostState } from '../../src/fleet/host.entity';
import { FractionalGpus1765400000000 } from '../../src/database/migrations/1765400000000-fractional-gpus';
import { UsageGpuMilli1765600000000 } from '../../src/database/migrations/1765600000000-usage-gpu-milli';
import type { Tx } from '../../src/database/unit-of-work';
import { OperationStatus } from '../../src/operations/operation.entity';
import { DB_KINDS, DbKind, TestDatabase, errorOf, one, openTestDatabase, reportSkippedPostgres, rows, run, scalar, useTestDatabase } from './support/database';
import { T0, at, ids, insertUser, insertVm, operation, registerHost } from './support/fixtures';
import { Repositories, repositoriesOf } from './support/repositories';

const TABLES = [
  'users',
  'hosts',
  'gpus',
  'gpu_allocations',
  'gpu_slot_claims',
  'vms',
  'vm_labels',
  'operations',
  'idempotency_keys',
  'reconciliation_runs',
  'installation',
  'usage_events',
  'images',
  'ssh_keys',
];

const TIMESTAMPED = ['users', 'hosts', 'gpus', 'gpu_allocations', 'gpu_slot_claims', 'vms', 'operations', 'idempotency_keys', 'reconciliation_runs', 'installation', 'usage_events', 'images', 'ssh_keys'];

/** Every index the migration creates (plain and partial), by table. */
const INDEXES: Record<string, string[]> = {
  vms: ['ix_vms_owner_id_id', 'uq_vms_live_public_ip'],
  vm_labels: ['ix_vm_labels_label_vm_id'],
  gpus: ['ix_gpus_model_vm_id', 'ix_gpus_vm_id'],
  gpu_allocations: ['ix_gpu_allocations_vm_id', 'uq_gpu_allocations_live_gpu'],
  gpu_slot_claims: ['ix_gpu_slot_claims_vm_id', 'uq_gpu_slot_claims_live_slot'],
  operations: ['ix_operations_vm_id_id', 'ix_operations_open_lease', 'uq_operations_open_vm'],
  idempotency_keys: ['ix_idempotency_keys_expires_at', 'ix_idempotency_keys_operation_id'],
  reconciliation_runs: ['ix_reconciliation_runs_started_at'],
  ssh_keys: ['ix_ssh_keys_owner_id'],
  hosts: ['uq_hosts_live_name'],
};

/** Named unique constraints and their columns, by table. */
const UNIQUES: Record<string, [string, string[]][]> = {
  users: [['uq_users_username', ['username']]],
  // A name is unique among hosts not removed: the partial index uq_hosts_live_name, not a constraint.
  hosts: [],
  gpus: [
    ['uq_gpus_host_index', ['host_id', 'index']],
    ['uq_gpus_uuid', ['uuid']],
  ],
  idempotency_keys: [['uq_idempotency_keys_user_key', ['user_id', 'key']]],
  images: [['uq_images_name', ['name']]],
  ssh_keys: [['uq_ssh_keys_owner_name', ['owner_id', 'name']]],
};

async function tableNames(db: TestDatabase): Promise<string[]> {
  const sql =
    db.kind === 'postgres'
      ? `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`
      : `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`;
  return db.uow.read(async (tx) => (await rows<{ name: string }>(tx, sql)).map((r) => r.name));
}

/** index name → its SQL definition, read from the database's own catalog. */
async function indexDefinitions(db: TestDatabase): Promise<Map<string, { table: string; sql: string }>> {
  const sql =
    db.kind === 'postgres'
      ? `SELECT indexname AS name, tablename AS tbl, indexdef AS def FROM pg_indexes WHERE schemaname = 'public'`
      : `SELECT name, tbl_name AS tbl, sql AS def FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`;
  const found = await db.uow.read((tx) => rows<{ name: string; tbl: string; def: string }>(tx, sql));
  return new Map(found.map((r) => [r.name, { table: r.tbl, sql: r.def }]));
}

/** Runs one statement in its own transaction and classifies the error it raises. */
async function violationOf(db: TestDatabase, work: (tx: Tx) => Promise<unknown>) {
  const error = await errorOf(() => db.uow.transaction(work));
  const violation = constraintViolation(error);
  if (!violation) throw error;
  return violation;
}

/** What constraintViolation() reports as the target: the constraint name on PostgreSQL, the columns on SQLite. */
function target(kind: DbKind, pgName: string, sqliteColumns: string): string {
  return kind === 'postgres' ? pgName : sqliteColumns;
}

/** The vms table's columns, as the database reports them. */
async function vmColumns(db: TestDatabase): Promise<string[]> {
  const runner = db.dataSource.createQueryRunner();
  try {
    return (await runner.getTable('vms'))!.columns.map((c) => c.name);
  } finally {
    await runner.release();
  }
}

describe.each(DB_KINDS)('schema migrations on %s', (kind) => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it('apply cleanly to an empty database, then find nothing left to apply', async () => {
    db = await openTestDatabase(kind, { migrate: false });
    expect(await tableNames(db)).toEqual([]);
    expect(await db.dataSource.showMigrations()).toBe(true);

    const applied = await db.dataSource.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => new m().name));
    expect(await db.dataSource.showMigrations()).toBe(false);

    const again = await db.dataSource.runMigrations();
    expect(again).toEqual([]);
    expect(await tableNames(db)).toEqual(expect.arrayContaining(TABLES));
  });

  it('the vm-region migration runs down and up again (with the ones after it): down drops vms.region and uq_operations_open_vm and keeps the data; up restores both and fills region from the host', async () => {
    const at = MIGRATIONS.indexOf(VmRegionOneOpenOperation1764950000000);
    db = await openTestDatabase(kind);
    const { fleet, vms, ops } = repositoriesOf(db);
    const seeded = await db.uow.transaction(async (tx) => {
      const owner = await insertUser(tx);
      const host = await registerHost(tx, fleet, { region: 'ap-south' });
      const placed = await insertVm(tx, vms, owner, { hostId: host.id, region: 'ap-south' });
      const unplaced = await insertVm(tx, vms, owner, { hostId: null, region: null });
      await ops.insert(tx, operation({ vmId: placed.id }));
      return { placed, unplaced };
    });

    for (let i = MIGRATIONS.length - 1; i >= at; i--) await db.dataSource.undoLastMigration();
    expect(await vmColumns(db)).not.toContain('region');
    expect([...(await indexDefinitions(db)).keys()]).not.toContain('uq_operations_open_vm');
    expect(await db.dataSource.showMigrations()).toBe(true);
    // Without the index a second open operation for the VM is accepted (so the index is what refused it).
    const second = operation({ vmId: seeded.placed.id });
    await db.uow.transaction((tx) =>
      run(
        tx,
        `INSERT INTO operations (id, vm_id, action, status, stage, attempts, created_at, updated_at) VALUES ($1, $2, 'delete', 'pending', 'queued', 0, $3, $3)`,
        [second.id, second.vmId, T0],
      ),
    );
    await db.uow.transaction((tx) => run(tx, 'DELETE FROM operations WHERE id = $1', [second.id]));

    const applied = await db.dataSource.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.slice(at).map((m) => new m().name));
    expect(await vmColumns(db)).toContain('region');
    expect([...(await indexDefinitions(db)).keys()]).toContain('uq_operations_open_vm');
    // The data survived, and up filled each placed VM's region from its host.
    const regions = await db.uow.read((tx) => rows<{ id: string; region: string | null }>(tx, 'SELECT id, region FROM vms ORDER BY id'));
    expect(regions).toEqual(
      [
        { id: seeded.placed.id, region: 'ap-south' },
        { id: seeded.unplaced.id, region: null },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    const violation = await violationOf(db, (tx) => ops.insert(tx, operation({ vmId: seeded.placed.id })));
    expect(violation.kind).toBe('unique');
  });

  it('the host-admin migration runs down and up again with hosts, GPUs and VMs in place: the rows and their links survive the SQLite table rebuild, labels default to [], and name uniqueness moves from a constraint to an index over hosts not removed', async () => {
    const at = MIGRATIONS.indexOf(HostAdmin1765350000000);
    db = await openTestDatabase(kind);
    const { fleet, vms } = repositoriesOf(db);
    const seeded = await db.uow.transaction(async (tx) => {
      const owner = await insertUser(tx);
      const host = await registerHost(tx, fleet, { name: 'gpu-a', labels: ['rack-1'], gpus: ['h100-80gb'] });
      const vm = await insertVm(tx, vms, owner, { hostId: host.id, region: host.region });
      return { host, vm };
    });
    const snapshot = (d: TestDatabase) =>
      d.uow.read(async (tx) => ({
        hosts: await rows(tx, 'SELECT id, name, region, cpu_cores, used_cpu_cores, state FROM hosts ORDER BY id'),
        gpus: await rows(tx, 'SELECT id, host_id FROM gpus ORDER BY id'),
        vms: await rows(tx, 'SELECT id, host_id FROM vms ORDER BY id'),
      }));
    const before = await snapshot(db);

    for (let i = MIGRATIONS.length - 1; i >= at; i--) await db.dataSource.undoLastMigration();
    expect(await snapshot(db)).toEqual(before);
    const duplicate = (name: string) => (tx: Tx) => registerHost(tx, fleet, { name });
    // Down brings the plain unique constraint back (the entity now maps labels, so insert by SQL).
    const insertHost = (name: string, state: string) => (tx: Tx) =>
      run(
        tx,
        `INSERT INTO hosts (id, name, region, cpu_cores, memory_mib, disk_gib, used_cpu_cores, used_memory_mib, used_disk_gib, state, created_at, updated_at)
         VALUES ($1, $2, 'eu-west', 8, 1024, 10, 0, 0, 0, $3, $4, $4)`,
        [ids.next(), name, state, T0],
      );
    expect((await violationOf(db, insertHost('gpu-a', 'removed'))).kind).toBe('unique');

    const applied = await db.dataSource.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.slice(at).map((m) => new m().name));
    expect(await snapshot(db)).toEqual(before);
    const labels = await db.uow.read((tx) => rows<{ labels: string }>(tx, 'SELECT labels FROM hosts WHERE id = $1', [seeded.host.id]));
    expect(labels).toEqual([{ labels: '[]' }]);
    // The foreign keys still hold after the rebuild: a GPU cannot point at a missing host, and the host cannot go while its GPU and VM point at it.
    expect((await violationOf(db, (tx) => run(tx, 'DELETE FROM hosts WHERE id = $1', [seeded.host.id]))).kind).toBe('foreign_key');
    if (kind === 'sqlite') expect(await db.uow.read((tx) => rows(tx, 'PRAGMA foreign_key_check'))).toEqual([]);
    if (kind === 'sqlite') {
      // Its rebuild commits before TypeORM records the migration; run again after a crash in between, up finds its work done.
      const runner = db.dataSource.createQueryRunner();
      try {
        await new HostAdmin1765350000000().up(runner);
      } finally {
        await runner.release();
      }
      expect(await snapshot(db)).toEqual(before);
    }
    // A live name is unique; a removed host's name may be taken again, once.
    expect((await violationOf(db, duplicate('gpu-a'))).kind).toBe('unique');
    await db.uow.transaction((tx) => run(tx, 'UPDATE hosts SET state = $2 WHERE id = $1', [seeded.host.id, HostState.Removed]));
    await db.uow.transaction(duplicate('gpu-a'));
    expect((await violationOf(db, duplicate('gpu-a'))).kind).toBe('unique');
  });

  it('the fractional-GPU migration turns GPU quotas and usage into milli-GPUs (and back on down), keeping the usage check', async () => {
    const at = MIGRATIONS.indexOf(FractionalGpus1765400000000);
    db = await openTestDatabase(kind);
    for (let i = MIGRATIONS.length - 1; i >= at; i--) await db.dataSource.undoLastMigration();
    const id = ids.next();
    await db.uow.transaction((tx) =>
      run(
        tx,
        `INSERT INTO users (id, username, password_hash, role, quota_gpus, used_vcpus, used_memory_mib, used_gpus, used_vms, created_at, updated_at)
         VALUES ($1, 'before-milli', 'x', 'member', 3, 0, 0, 2, 1, $2, $2)`,
        [id, T0],
      ),
    );
    await db.dataSource.runMigrations();
    const milli = await db.uow.read((tx) => one<{ quota_gpu_milli: number; used_gpu_milli: number }>(tx, 'SELECT quota_gpu_milli, used_gpu_milli FROM users WHERE id = $1', [id]));
    expect(milli).toEqual({ quota_gpu_milli: 3000, used_gpu_milli: 2000 });
    const violation = await violationOf(db, (tx) => run(tx, 'UPDATE users SET used_gpu_milli = -1 WHERE id = $1', [id]));
    expect(violation).toEqual({ kind: 'check', target: 'ck_users_usage' });
    await db.uow.transaction((tx) => run(tx, 'UPDATE users SET used_gpu_milli = 2429 WHERE id = $1', [id]));
    for (let i = MIGRATIONS.length - 1; i >= at; i--) await db.dataSource.undoLastMigration();
    const whole = await db.uow.read((tx) => one<{ quota_gpus: number; used_gpus: number }>(tx, 'SELECT quota_gpus, used_gpus FROM users WHERE id = $1', [id]));
    expect(whole).toEqual({ quota_gpus: 3, used_gpus: 3 }); // a fraction held rounds up
  });

  it('the usage migration meters earlier whole-GPU events in milli-GPUs, and on down drops the fractional ones only', async () => {
    const at = MIGRATIONS.indexOf(UsageGpuMilli1765600000000);
    const opened = await openTestDatabase(kind);
    db = opened;
    const { vms } = repositoriesOf(opened);
    const { owner, vm } = await opened.uow.transaction(async (tx) => {
      const ownerId = await insertUser(tx);
      return { owner: ownerId, vm: await insertVm(tx, vms, ownerId) };
    });
    for (let i = MIGRATIONS.length - 1; i >= at; i--) await opened.dataSource.undoLastMigration();
    const event = (kind: string, gpuCount: number) =>
      opened.uow.transaction((tx) =>
        run(
          tx,
          `INSERT INTO usage_events (id, vm_id, owner_id, kind, gpu_count, gpu_model, at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)`,
          [ids.next(), vm.id, owner, kind, gpuCount, gpuCount > 0 ? 'h100-80gb' : null, T0],
        ),
      );
    await event('gpu_claim', 2);
    await event('power_on', 0);
    await opened.dataSource.runMigrations();
    const metered = () => opened.uow.read((tx) => rows<{ kind: string; gpu_milli: number; gpu_profile: string | null }>(tx, 'SELECT kind, gpu_milli, gpu_profile FROM usage_events ORDER BY kind'));
    expect(await metered()).toEqual([
      { kind: 'gpu_claim', gpu_milli: 2000, gpu_profile: null },
      { kind: 'power_on', gpu_milli: 0, gpu_profile: null },
    ]);
    await opened.uow.transaction((tx) =>
      run(
        tx,
        `INSERT INTO usage_events (id, vm_id, owner_id, kind, gpu_count, gpu_model, gpu_milli, gpu_profile, at, created_at, updated_at) VALUES ($1, $2, $3, 'gpu_claim', 0, 'h200-141gb', 429, '3g.71gb', $4, $4, $4)`,
        [ids.next(), vm.id, owner, T0],
      ),
    );
    await opened.dataSource.undoLastMigration();
    expect(await opened.uow.read((tx) => rows<{ kind: string; gpu_count: number }>(tx, 'SELECT kind, gpu_count FROM usage_events ORDER BY kind'))).toEqual([
      { kind: 'gpu_claim', gpu_count: 2 },
      { kind: 'power_on', gpu_count: 0 },
    ]);
  });

  it('run every migration down and up again: down drops every table, up recreates them with their constraints', async () => {
    db = await openTestDatabase(kind);
    await db.uow.transaction((tx) => insertUser(tx, { username: 'before-down' }));

    for (let i = 0; i < MIGRATIONS.length; i++) await db.dataSource.undoLastMigration();
    const afterDown = await tableNames(db);
    for (const table of TABLES) expect(afterDown).not.toContain(table);
    expect(await db.dataSource.showMigrations()).toBe(true);

    const applied = await db.dataSource.runMigrations();
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => new m().name));
    expect(await tableNames(db)).toEqual(expect.arrayContaining(TABLES));
    const indexes = await indexDefinitions(db);
    expect([...indexes.keys()]).toEqual(expect.arrayContaining(Object.values(INDEXES).flat()));
    expect(await vmColumns(db)).toContain('region');
    // The data went with the tables, and the constraints came back with them.
    const reopened = db;
    expect(await reopened.uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM users'))).toBe(0);
    await reopened.uow.transaction((tx) => insertUser(tx, { username: 'dup' }));
    const violation = await violationOf(reopened, (tx) => insertUser(tx, { username: 'dup' }));
    expect(violation.kind).toBe('unique');
  });
});

describe.each(DB_KINDS)('schema objects and database-level constraints on %s', (kind) => {
  const db = useTestDatabase(kind);
  let fleet: Repositories['fleet'];
  let vms: Repositories['vms'];
  let ops: Repositories['ops'];
  beforeEach(() => {
    ({ fleet, vms, ops } = repositoriesOf(db()));
  });

  it('creates every table', async () => {
    expect(await tableNames(db())).toEqual(expect.arrayContaining(TABLES));
  });

  if (kind === 'sqlite') {
    it('SQLite only: every connection is in WAL mode with NORMAL sync, foreign keys on and statement journals in memory', async () => {
      const pragma = (name: string) => db().uow.read(async (tx) => ((await tx.query(`PRAGMA ${name}`)) as Record<string, unknown>[])[0][name]);
      // synchronous 1 = NORMAL; temp_store 2 = MEMORY (a statement journal is a temporary file otherwise, made and unlinked per statement).
      expect([await pragma('journal_mode'), await pragma('synchronous'), await pragma('foreign_keys'), await pragma('temp_store')]).toEqual(['wal', 1, 1, 2]);
    });
  }

  it('creates every index on the right table; the live-GPU, live-IP and open-operation indexes are unique and partial', async () => {
    const indexes = await indexDefinitions(db());
    for (const [table, names] of Object.entries(INDEXES)) {
      for (const name of names) {
        expect({ name, table: indexes.get(name)?.table }).toEqual({ name, table });
      }
    }
    const liveGpu = indexes.get('uq_gpu_allocations_live_gpu')!.sql;
    expect(liveGpu).toMatch(/CREATE UNIQUE INDEX/i);
    expect(liveGpu).toMatch(/WHERE\s*\(?\s*"?released_at"?\s+IS\s+NULL/i);
    const liveIp = indexes.get('uq_vms_live_public_ip')!.sql;
    expect(liveIp).toMatch(/CREATE UNIQUE INDEX/i);
    expect(liveIp).toMatch(/public_ip"?\s+IS\s+NOT\s+NULL/i);
    expect(liveIp).toMatch(/released_at"?\s+IS\s+NULL/i);
    const openOp = indexes.get('uq_operations_open_vm')!.sql;
    expect(openOp).toMatch(/CREATE UNIQUE INDEX/i);
    expect(openOp).toMatch(/vm_id"?\s+IS\s+NOT\s+NULL/i);
    expect(openOp).toMatch(/status"?\)?(::\w+)?\s*(IN\s*\(|=\s*ANY)/i); // PostgreSQL prints IN as = ANY (ARRAY[...])
    expect(openOp).toMatch(/'pending'/);
    expect(openOp).toMatch(/'running'/);
    const liveName = indexes.get('uq_hosts_live_name')!.sql;
    expect(liveName).toMatch(/CREATE UNIQUE INDEX/i);
    expect(liveName).toMatch(/state"?\)?(::\w+)?\s*<>\s*'removed'/i);
  });

  it('the live-slot index of gpu_slot_claims is unique and partial; gpus and vms have their fractional columns', async () => {
    const live = (await indexDefinitions(db())).get('uq_gpu_slot_claims_live_slot')!.sql;
    expect(live).toMatch(/CREATE UNIQUE INDEX/i);
    expect(live).toMatch(/gpu_id"?\s*,\s*"?slot/i);
    expect(live).toMatch(/WHERE\s*\(?\s*"?released_at"?\s+IS\s+NULL/i);
    const runner = db().dataSource.createQueryRunner();
    try {
      const gpus = (await runner.getTable('gpus'))!;
      expect(gpus.findColumnByName('sharing_mode')).toMatchObject({ isNullable: false });
      expect(String(gpus.findColumnByName('sharing_mode')!.default)).toMatch(/passthrough/);
      expect(gpus.findColumnByName('vgpu_profile')).toMatchObject({ isNullable: true });
      expect(gpus.findColumnByName('live_claims')).toMatchObject({ isNullable: false });
      expect((await runner.getTable('vms'))!.findColumnByName('gpu_profile')).toMatchObject({ isNullable: true });
      const users = (await runner.getTable('users'))!;
      expect(users.findColumnByName('used_gpu_milli')).toMatchObject({ isNullable: false });
      expect(users.findColumnByName('quota_gpu_milli')).toMatchObject({ isNullable: true });
      expect(users.findColumnByName('used_gpus')).toBeUndefined();
      const claims = (await runner.getTable('gpu_slot_claims'))!;
      expect(claims.foreignKeys.map((f) => `${f.columnNames.join()}->${f.referencedTableName}`).sort()).toEqual(['gpu_id->gpus', 'vm_id->vms']);
    } finally {
      await runner.release();
    }
  });

  it('(g) a slot of a GPU has at most one live claim; another slot, another GPU, or a released claim do not clash', async () => {
    const { gpuId, vmA, vmB } = await hostWithGpu();
    const other = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: ['h200-141gb'] }));
    const claim = (tx: Tx, gpu: string, vmId: string, slot: number, releasedAt: Date | null = null) =>
      run(tx, `INSERT INTO gpu_slot_claims (id, gpu_id, vm_id, slot, profile, released_at, created_at, updated_at) VALUES ($1, $2, $3, $4, '1g.18gb', $5, $6, $6)`, [
        ids.next(),
        gpu,
        vmId,
        slot,
        releasedAt,
        T0,
      ]);
    await db().uow.transaction((tx) => claim(tx, gpuId, vmA, 6));
    const violation = await violationOf(db(), (tx) => claim(tx, gpuId, vmB, 6));
    expect(violation).toEqual({ kind: 'unique', target: target(kind, 'uq_gpu_slot_claims_live_slot', 'gpu_slot_claims.gpu_id, gpu_slot_claims.slot') });
    await db().uow.transaction(async (tx) => {
      await claim(tx, gpuId, vmB, 5);
      await claim(tx, other.gpus[0].id, vmB, 6);
      await claim(tx, gpuId, vmB, 6, T0); // released: history, not a holder
    });
    await db().uow.transaction((tx) => run(tx, 'UPDATE gpu_slot_claims SET released_at = $2 WHERE vm_id = $1 AND released_at IS NULL', [vmA, T0]));
    await db().uow.transaction((tx) => claim(tx, gpuId, vmB, 4));
    await db().uow.transaction((tx) => claim(tx, gpuId, vmA, 6)); // free again once released
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_slot_claims WHERE gpu_id = $1 AND released_at IS NULL', [gpuId]))).toBe(3);
  });

  it('vms.region is a nullable varchar(64) column', async () => {
    const runner = db().dataSource.createQueryRunner();
    try {
      const region = (await runner.getTable('vms'))!.findColumnByName('region');
      expect(region).toBeDefined();
      expect(region!.isNullable).toBe(true);
      expect(region!.type).toBe(kind === 'postgres' ? 'character varying' : 'varchar');
      expect(region!.length).toBe('64');
    } finally {
      await runner.release();
    }
  });

  it('declares the named unique, check and foreign-key constraints', async () => {
    const runner = db().dataSource.createQueryRunner();
    try {
      for (const [table, expected] of Object.entries(UNIQUES)) {
        const loaded = await runner.getTable(table);
        const uniques = loaded!.uniques.map((u): [string, string[]] => [u.name!, u.columnNames]);
        expect({ table, uniques: uniques.sort() }).toEqual({ table, uniques: expected });
      }
      const hosts = await runner.getTable('hosts');
      const users = await runner.getTable('users');
      expect(hosts!.checks.map((c) => c.name)).toContain('ck_hosts_capacity');
      expect(users!.checks.map((c) => c.name)).toContain('ck_users_usage');
      const gpus = await runner.getTable('gpus');
      expect(gpus!.foreignKeys.map((f) => `${f.columnNames.join()}->${f.referencedTableName}`).sort()).toEqual([
        'host_id->hosts',
        'vm_id->vms',
      ]);
    } finally {
      await runner.release();
    }
  });

  it("the entities of the timestamped tables, and only those, map created_at and updated_at to TypeORM's create and update date columns", async () => {
    const mapped = ENTITIES.map((entity) => db().dataSource.getMetadata(entity))
      .filter((m) => m.createDateColumn || m.updateDateColumn)
      .map((m) => ({ table: m.tableName, created: m.createDateColumn?.databaseName, updated: m.updateDateColumn?.databaseName }));
    expect(mapped.map((m) => m.table).sort()).toEqual([...TIMESTAMPED].sort());
    for (const m of mapped) expect(m).toEqual({ table: m.table, created: 'created_at', updated: 'updated_at' });
  });

  it.each(TIMESTAMPED)('%s has non-null created_at and updated_at timestamp columns', async (table) => {
    const runner = db().dataSource.createQueryRunner();
    try {
      const loaded = await runner.getTable(table);
      for (const name of ['created_at', 'updated_at']) {
        const column = loaded!.findColumnByName(name);
        expect(column).toBeDefined();
        expect(column!.isNullable).toBe(false);
        expect(column!.type).toBe(kind === 'postgres' ? 'timestamp with time zone' : 'datetime');
      }
    } finally {
      await runner.release();
    }
  });

  async function hostWithGpu() {
    return db().uow.transaction(async (tx) => {
      const owner = await insertUser(tx);
      const host = await registerHost(tx, fleet, { gpus: ['h100-80gb'] });
      const vmA = await insertVm(tx, vms, owner);
      const vmB = await insertVm(tx, vms, owner);
      return { owner, host, gpuId: host.gpus[0].id, vmA: vmA.id, vmB: vmB.id };
    });
  }

  const insertAllocation = (tx: Tx, gpuId: string, vmId: string, releasedAt: Date | null = null) =>
    run(tx, `INSERT INTO gpu_allocations (id, gpu_id, vm_id, released_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`, [
      ids.next(),
      gpuId,
      vmId,
      releasedAt,
      T0,
    ]);

  it('(a) a GPU has at most one live allocation; a second is allowed once the first is released', async () => {
    const { gpuId, vmA, vmB } = await hostWithGpu();
    await db().uow.transaction((tx) => insertAllocation(tx, gpuId, vmA));

    const violation = await violationOf(db(), (tx) => insertAllocation(tx, gpuId, vmB));
    expect(violation).toEqual({ kind: 'unique', target: target(kind, 'uq_gpu_allocations_live_gpu', 'gpu_allocations.gpu_id') });

    // Released history rows do not count, however many there are.
    await db().uow.transaction(async (tx) => {
      expect(await run(tx, `UPDATE gpu_allocations SET released_at = $2 WHERE vm_id = $1`, [vmA, T0])).toBe(1);
      await insertAllocation(tx, gpuId, vmA, T0);
      await insertAllocation(tx, gpuId, vmB);
    });
    const counts = await db().uow.read(async (tx) => ({
      all: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE gpu_id = $1', [gpuId]),
      live: await scalar(tx, 'SELECT COUNT(*) AS n FROM gpu_allocations WHERE gpu_id = $1 AND released_at IS NULL', [gpuId]),
    }));
    expect(counts).toEqual({ all: 3, live: 1 });
  });

  it('(b) two live VMs cannot share a public IP; a released VM frees it; VMs without an IP never clash', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const first = await db().uow.transaction((tx) => insertVm(tx, vms, owner, { publicIp: '203.0.113.7' }));

    const violation = await violationOf(db(), (tx) => insertVm(tx, vms, owner, { publicIp: '203.0.113.7' }));
    expect(violation).toEqual({ kind: 'unique', target: target(kind, 'uq_vms_live_public_ip', 'vms.public_ip') });

    await db().uow.transaction(async (tx) => {
      await run(tx, 'UPDATE vms SET released_at = $2 WHERE id = $1', [first.id, T0]);
      await insertVm(tx, vms, owner, { publicIp: '203.0.113.7' });
      await insertVm(tx, vms, owner, { publicIp: null });
      await insertVm(tx, vms, owner, { publicIp: null });
    });
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM vms'))).toBe(4);
    // Re-binding the released VM's IP while another live VM holds it is refused too.
    const unrelease = await violationOf(db(), (tx) => run(tx, 'UPDATE vms SET released_at = NULL WHERE id = $1', [first.id]));
    expect(unrelease.kind).toBe('unique');
  });

  it('(c) hosts refuse usage above capacity or below zero (ck_hosts_capacity), and accept usage equal to capacity', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { cpuCores: 8, memoryMib: 1024, diskGib: 10 }));
    const set = (column: string, value: number) => (tx: Tx) => run(tx, `UPDATE hosts SET ${column} = $2 WHERE id = $1`, [host.id, value]);
    const check = { kind: 'check', target: 'ck_hosts_capacity' };

    expect(await violationOf(db(), set('used_cpu_cores', 9))).toEqual(check);
    expect(await violationOf(db(), set('used_memory_mib', 1025))).toEqual(check);
    expect(await violationOf(db(), set('used_disk_gib', 11))).toEqual(check);
    expect(await violationOf(db(), set('used_cpu_cores', -1))).toEqual(check);
    expect(await violationOf(db(), set('used_memory_mib', -1))).toEqual(check);
    expect(await violationOf(db(), set('used_disk_gib', -1))).toEqual(check);
    // Inserting an over-committed host is refused as well.
    expect(
      await violationOf(db(), (tx) =>
        run(
          tx,
          `INSERT INTO hosts (id, name, region, cpu_cores, memory_mib, disk_gib, used_cpu_cores, used_memory_mib, used_disk_gib, state, created_at, updated_at)
           VALUES ($1, 'over', 'r', 4, 1024, 10, 5, 0, 0, 'active', $2, $2)`,
          [ids.next(), T0],
        ),
      ),
    ).toEqual(check);

    await db().uow.transaction(async (tx) => {
      expect(await set('used_cpu_cores', 8)(tx)).toBe(1);
      expect(await set('used_memory_mib', 1024)(tx)).toBe(1);
      expect(await set('used_disk_gib', 10)(tx)).toBe(1);
    });
  });

  it('(d) users usage counters cannot go negative (ck_users_usage)', async () => {
    const user = await db().uow.transaction((tx) => insertUser(tx));
    for (const column of ['used_vcpus', 'used_memory_mib', 'used_gpu_milli', 'used_vms']) {
      const violation = await violationOf(db(), (tx) => run(tx, `UPDATE users SET ${column} = ${column} - 1 WHERE id = $1`, [user]));
      expect({ column, ...violation }).toEqual({ column, kind: 'check', target: 'ck_users_usage' });
    }
    // Zero and positive usage are fine.
    expect(await db().uow.transaction((tx) => run(tx, 'UPDATE users SET used_vms = used_vms + 1 WHERE id = $1', [user]))).toBe(1);
  });

  it('(e) foreign keys refuse rows pointing at missing parents', async () => {
    const missingHost = ids.next();
    const gpu = await violationOf(db(), (tx) =>
      run(
        tx,
        `INSERT INTO gpus (id, host_id, "index", model, product_name, memory_mib, pci_address, uuid, created_at, updated_at)
         VALUES ($1, $2, 0, 'h100-80gb', 'NVIDIA H100', 81559, '0000:18:00.0', 'GPU-orphan', $3, $3)`,
        [ids.next(), missingHost, T0],
      ),
    );
    expect(gpu.kind).toBe('foreign_key');
    if (kind === 'postgres') expect(gpu.target).toBe('fk_hosts_host_id');

    const vm = await violationOf(db(), (tx) => insertVm(tx, vms, ids.next()));
    expect(vm.kind).toBe('foreign_key');

    const { host, gpuId, vmA } = await hostWithGpu();
    const bind = await violationOf(db(), (tx) => run(tx, 'UPDATE gpus SET vm_id = $2 WHERE id = $1', [gpuId, ids.next()]));
    expect(bind.kind).toBe('foreign_key');
    expect(await db().uow.transaction((tx) => run(tx, 'UPDATE gpus SET vm_id = $2 WHERE id = $1', [gpuId, vmA]))).toBe(1);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM hosts WHERE id = $1', [host.id]))).toBe(1);
  });

  it('(e) ON DELETE RESTRICT: a parent with children cannot be deleted', async () => {
    const { host } = await hostWithGpu();
    const error = await errorOf(() => db().uow.transaction((tx) => run(tx, 'DELETE FROM hosts WHERE id = $1', [host.id])));
    expect((error as Error).message).toMatch(/foreign key/i);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM hosts WHERE id = $1', [host.id]))).toBe(1);
  });

  // SQLite reports ON DELETE RESTRICT as SQLITE_CONSTRAINT_TRIGGER; constraintViolation() maps it like PostgreSQL's 23503.
  it('(e) constraintViolation() classifies an ON DELETE RESTRICT violation as foreign_key', async () => {
    const { host } = await hostWithGpu();
    const error = await errorOf(() => db().uow.transaction((tx) => run(tx, 'DELETE FROM hosts WHERE id = $1', [host.id])));
    expect(constraintViolation(error)?.kind).toBe('foreign_key');
  });

  it('(f) a VM has at most one open operation (uq_operations_open_vm); finished ones, and operations on no VM, do not count', async () => {
    const owner = await db().uow.transaction((tx) => insertUser(tx));
    const vm = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const other = await db().uow.transaction((tx) => insertVm(tx, vms, owner));
    const open = operation({ vmId: vm.id, status: OperationStatus.Pending });
    await db().uow.transaction((tx) => ops.insert(tx, open));
    const refused = { kind: 'unique', target: target(kind, 'uq_operations_open_vm', 'operations.vm_id') };

    // A second open operation for the VM, pending or running, is refused.
    expect(await violationOf(db(), (tx) => ops.insert(tx, operation({ vmId: vm.id, status: OperationStatus.Pending })))).toEqual(refused);
    expect(await violationOf(db(), (tx) => ops.insert(tx, operation({ vmId: vm.id, status: OperationStatus.Running })))).toEqual(refused);

    // Finished operations beside the open one are fine, however many; so are open ones of another VM or of no VM.
    await db().uow.transaction(async (tx) => {
      await ops.insert(tx, operation({ vmId: vm.id, status: OperationStatus.Succeeded, stage: 'done', finishedAt: at(1) }));
      await ops.insert(tx, operation({ vmId: vm.id, status: OperationStatus.Failed, stage: 'done', finishedAt: at(2) }));
      await ops.insert(tx, operation({ vmId: other.id, status: OperationStatus.Running }));
      await ops.insert(tx, operation({ vmId: null }));
      await ops.insert(tx, operation({ vmId: null }));
    });
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM operations WHERE vm_id = $1', [vm.id]))).toBe(3);

    // Once the open one finishes, the VM may have a new one.
    await db().uow.transaction((tx) => ops.complete(tx, open.id, { status: OperationStatus.Succeeded, attempts: 1 }, at(3)));
    const next = operation({ vmId: vm.id, status: OperationStatus.Pending });
    await db().uow.transaction((tx) => ops.insert(tx, next));
    expect((await db().uow.read((tx) => ops.findOpenForVm(tx, vm.id)))?.id).toBe(next.id);
    // Reopening a finished one while another is open is refused too.
    expect(
      await violationOf(db(), (tx) => run(tx, `UPDATE operations SET status = 'running' WHERE id = $1`, [open.id])),
    ).toEqual(refused);
  });

  it('an SSH key name is unique per user, not across users; an image name is unique', async () => {
    const alice = await db().uow.transaction((tx) => insertUser(tx));
    const bob = await db().uow.transaction((tx) => insertUser(tx));
    const insertKey = (owner: string, name: string) => (tx: Tx) =>
      run(
        tx,
        `INSERT INTO ssh_keys (id, owner_id, name, public_key, key_type, fingerprint, comment, created_at, updated_at)
         VALUES ($1, $2, $3, 'ssh-ed25519 AAAA', 'ed25519', 'SHA256:x', NULL, $4, $4)`,
        [ids.next(), owner, name, T0],
      );
    await db().uow.transaction(insertKey(alice, 'laptop'));
    await db().uow.transaction(insertKey(bob, 'laptop'));
    expect(await violationOf(db(), insertKey(alice, 'laptop'))).toEqual({
      kind: 'unique',
      target: target(kind, 'uq_ssh_keys_owner_name', 'ssh_keys.owner_id, ssh_keys.name'),
    });
    expect((await violationOf(db(), insertKey(ids.next(), 'other'))).kind).toBe('foreign_key');
    const insertImage = (name: string) => (tx: Tx) =>
      run(tx, `INSERT INTO images (id, name, path, format, created_at, updated_at) VALUES ($1, $2, '/tmp/x.qcow2', 'qcow2', $3, $3)`, [ids.next(), name, T0]);
    await db().uow.transaction(insertImage('debian-12'));
    expect(await violationOf(db(), insertImage('debian-12'))).toEqual({ kind: 'unique', target: target(kind, 'uq_images_name', 'images.name') });
  });

  it('GPU uuids are unique, and so are (host, index) pairs', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: ['h100-80gb'] }));
    const insertGpu = (index: number, uuid: string) => (tx: Tx) =>
      run(
        tx,
        `INSERT INTO gpus (id, host_id, "index", model, product_name, memory_mib, pci_address, uuid, created_at, updated_at)
         VALUES ($1, $2, $3, 'h100-80gb', 'NVIDIA H100', 81559, '0000:19:00.0', $4, $5, $5)`,
        [ids.next(), host.id, index, uuid, T0],
      );
    expect(await violationOf(db(), insertGpu(0, 'GPU-other'))).toEqual({
      kind: 'unique',
      target: target(kind, 'uq_gpus_host_index', 'gpus.host_id, gpus.index'),
    });
    expect(await violationOf(db(), insertGpu(1, host.gpus[0].uuid))).toEqual({
      kind: 'unique',
      target: target(kind, 'uq_gpus_uuid', 'gpus.uuid'),
    });
    await db().uow.transaction(insertGpu(1, 'GPU-other'));
    // mig_mode has a database default.
    const modes = await db().uow.read((tx) => rows<{ mig_mode: string }>(tx, 'SELECT mig_mode FROM gpus WHERE uuid = $1', ['GPU-other']));
    expect(modes).toEqual([{ mig_mode: 'disabled' }]);
  });
});

reportSkippedPostgres('schema');
