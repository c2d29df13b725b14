import { constraintViolation } from '../../src/database/sql-dialect';
import type { Tx } from '../../src/database/unit-of-work';
import { MIGRATIONS } from '../../src/database/data-source-options';
import { FleetRepository } from '../../src/fleet/fleet.repository';
import { DB_KINDS, DbKind, TestDatabase, errorOf, openTestDatabase, reportSkippedPostgres, scalar, useTestDatabase } from './support/database';
import { T0, ids, insertUser, insertVm, registerHost } from './support/fixtures';

const TABLES = [
  'users',
  'hosts',
  'gpus',
  'gpu_allocations',
  'vms',
  'vm_labels',
  'operations',
  'idempotency_keys',
  'reconciliation_runs',
];

const TIMESTAMPED = ['users', 'hosts', 'gpus', 'vms', 'operations', 'idempotency_keys'];

/** Every index the migration creates (plain and partial), by table. */
const INDEXES: Record<string, string[]> = {
  vms: ['ix_vms_owner_id_id', 'uq_vms_live_public_ip'],
  vm_labels: ['ix_vm_labels_label_vm_id'],
  gpus: ['ix_gpus_model_vm_id', 'ix_gpus_vm_id'],
  gpu_allocations: ['ix_gpu_allocations_vm_id', 'uq_gpu_allocations_live_gpu'],
  operations: ['ix_operations_vm_id_id', 'ix_operations_open_lease'],
  idempotency_keys: ['ix_idempotency_keys_expires_at', 'ix_idempotency_keys_operation_id'],
  reconciliation_runs: ['ix_reconciliation_runs_started_at'],
};

/** Named unique constraints and their columns, by table. */
const UNIQUES: Record<string, [string, string[]][]> = {
  users: [['uq_users_username', ['username']]],
  hosts: [['uq_hosts_name', ['name']]],
  gpus: [
    ['uq_gpus_host_index', ['host_id', 'index']],
    ['uq_gpus_uuid', ['uuid']],
  ],
  idempotency_keys: [['uq_idempotency_keys_user_key', ['user_id', 'key']]],
};

async function tableNames(db: TestDatabase): Promise<string[]> {
  const sql =
    db.kind === 'postgres'
      ? `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`
      : `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1`;
  return db.uow.read(async (tx) => (await tx.rows<{ name: string }>(sql)).map((r) => r.name));
}

/** index name → its SQL definition, read from the database's own catalog. */
async function indexDefinitions(db: TestDatabase): Promise<Map<string, { table: string; sql: string }>> {
  const sql =
    db.kind === 'postgres'
      ? `SELECT indexname AS name, tablename AS tbl, indexdef AS def FROM pg_indexes WHERE schemaname = 'public'`
      : `SELECT name, tbl_name AS tbl, sql AS def FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL`;
  const rows = await db.uow.read((tx) => tx.rows<{ name: string; tbl: string; def: string }>(sql));
  return new Map(rows.map((r) => [r.name, { table: r.tbl, sql: r.def }]));
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

  it('run down and up again: down drops every table, up recreates them with their constraints', async () => {
    db = await openTestDatabase(kind);
    await db.uow.transaction((tx) => insertUser(tx, { username: 'before-down' }));

    await db.dataSource.undoLastMigration();
    const afterDown = await tableNames(db);
    for (const table of TABLES) expect(afterDown).not.toContain(table);
    expect(await db.dataSource.showMigrations()).toBe(true);

    const applied = await db.dataSource.runMigrations();
    expect(applied).toHaveLength(MIGRATIONS.length);
    expect(await tableNames(db)).toEqual(expect.arrayContaining(TABLES));
    const indexes = await indexDefinitions(db);
    expect([...indexes.keys()]).toEqual(expect.arrayContaining(Object.values(INDEXES).flat()));
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
  const fleet = new FleetRepository();

  it('creates every table', async () => {
    expect(await tableNames(db())).toEqual(expect.arrayContaining(TABLES));
  });

  it('creates every index on the right table; the live-GPU and live-IP indexes are unique and partial', async () => {
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
      const vmA = await insertVm(tx, owner);
      const vmB = await insertVm(tx, owner);
      return { owner, host, gpuId: host.gpus[0].id, vmA: vmA.id, vmB: vmB.id };
    });
  }

  const insertAllocation = (tx: Tx, gpuId: string, vmId: string, releasedAt: Date | null = null) =>
    tx.run(
      `INSERT INTO gpu_allocations (id, gpu_id, vm_id, released_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
      [ids.next(), gpuId, vmId, tx.dialect.tsOrNull(releasedAt), tx.dialect.ts(T0)],
    );

  it('(a) a GPU has at most one live allocation; a second is allowed once the first is released', async () => {
    const { gpuId, vmA, vmB } = await hostWithGpu();
    await db().uow.transaction((tx) => insertAllocation(tx, gpuId, vmA));

    const violation = await violationOf(db(), (tx) => insertAllocation(tx, gpuId, vmB));
    expect(violation).toEqual({ kind: 'unique', target: target(kind, 'uq_gpu_allocations_live_gpu', 'gpu_allocations.gpu_id') });

    // Released history rows do not count, however many there are.
    await db().uow.transaction(async (tx) => {
      expect(await tx.run(`UPDATE gpu_allocations SET released_at = $2 WHERE vm_id = $1`, [vmA, tx.dialect.ts(T0)])).toBe(1);
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
    const first = await db().uow.transaction((tx) => insertVm(tx, owner, { publicIp: '203.0.113.7' }));

    const violation = await violationOf(db(), (tx) => insertVm(tx, owner, { publicIp: '203.0.113.7' }));
    expect(violation).toEqual({ kind: 'unique', target: target(kind, 'uq_vms_live_public_ip', 'vms.public_ip') });

    await db().uow.transaction(async (tx) => {
      await tx.run('UPDATE vms SET released_at = $2 WHERE id = $1', [first.id, tx.dialect.ts(T0)]);
      await insertVm(tx, owner, { publicIp: '203.0.113.7' });
      await insertVm(tx, owner, { publicIp: null });
      await insertVm(tx, owner, { publicIp: null });
    });
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM vms'))).toBe(4);
    // Re-binding the released VM's IP while another live VM holds it is refused too.
    const unrelease = await violationOf(db(), (tx) => tx.run('UPDATE vms SET released_at = NULL WHERE id = $1', [first.id]));
    expect(unrelease.kind).toBe('unique');
  });

  it('(c) hosts refuse usage above capacity or below zero (ck_hosts_capacity), and accept usage equal to capacity', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { cpuCores: 8, memoryMib: 1024, diskGib: 10 }));
    const set = (column: string, value: number) => (tx: Tx) => tx.run(`UPDATE hosts SET ${column} = $2 WHERE id = $1`, [host.id, value]);
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
        tx.run(
          `INSERT INTO hosts (id, name, region, cpu_cores, memory_mib, disk_gib, used_cpu_cores, used_memory_mib, used_disk_gib, state, created_at, updated_at)
           VALUES ($1, 'over', 'r', 4, 1024, 10, 5, 0, 0, 'active', $2, $2)`,
          [ids.next(), tx.dialect.ts(T0)],
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
    for (const column of ['used_vcpus', 'used_memory_mib', 'used_gpus', 'used_vms']) {
      const violation = await violationOf(db(), (tx) => tx.run(`UPDATE users SET ${column} = ${column} - 1 WHERE id = $1`, [user]));
      expect({ column, ...violation }).toEqual({ column, kind: 'check', target: 'ck_users_usage' });
    }
    // Zero and positive usage are fine.
    expect(await db().uow.transaction((tx) => tx.run('UPDATE users SET used_vms = used_vms + 1 WHERE id = $1', [user]))).toBe(1);
  });

  it('(e) foreign keys refuse rows pointing at missing parents', async () => {
    const missingHost = ids.next();
    const gpu = await violationOf(db(), (tx) =>
      tx.run(
        `INSERT INTO gpus (id, host_id, "index", model, product_name, memory_mib, pci_address, uuid, created_at, updated_at)
         VALUES ($1, $2, 0, 'h100-80gb', 'NVIDIA H100', 81559, '0000:18:00.0', 'GPU-orphan', $3, $3)`,
        [ids.next(), missingHost, tx.dialect.ts(T0)],
      ),
    );
    expect(gpu.kind).toBe('foreign_key');
    if (kind === 'postgres') expect(gpu.target).toBe('fk_hosts_host_id');

    const vm = await violationOf(db(), (tx) => insertVm(tx, ids.next()));
    expect(vm.kind).toBe('foreign_key');

    const { host, gpuId, vmA } = await hostWithGpu();
    const bind = await violationOf(db(), (tx) => tx.run('UPDATE gpus SET vm_id = $2 WHERE id = $1', [gpuId, ids.next()]));
    expect(bind.kind).toBe('foreign_key');
    expect(await db().uow.transaction((tx) => tx.run('UPDATE gpus SET vm_id = $2 WHERE id = $1', [gpuId, vmA]))).toBe(1);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM hosts WHERE id = $1', [host.id]))).toBe(1);
  });

  it('(e) ON DELETE RESTRICT: a parent with children cannot be deleted', async () => {
    const { host } = await hostWithGpu();
    const error = await errorOf(() => db().uow.transaction((tx) => tx.run('DELETE FROM hosts WHERE id = $1', [host.id])));
    expect((error as Error).message).toMatch(/foreign key/i);
    expect(await db().uow.read((tx) => scalar(tx, 'SELECT COUNT(*) AS n FROM hosts WHERE id = $1', [host.id]))).toBe(1);
  });

  // SQLite reports ON DELETE RESTRICT as SQLITE_CONSTRAINT_TRIGGER; constraintViolation() maps it like PostgreSQL's 23503.
  it('(e) constraintViolation() classifies an ON DELETE RESTRICT violation as foreign_key', async () => {
    const { host } = await hostWithGpu();
    const error = await errorOf(() => db().uow.transaction((tx) => tx.run('DELETE FROM hosts WHERE id = $1', [host.id])));
    expect(constraintViolation(error)?.kind).toBe('foreign_key');
  });

  it('GPU uuids are unique, and so are (host, index) pairs', async () => {
    const host = await db().uow.transaction((tx) => registerHost(tx, fleet, { gpus: ['h100-80gb'] }));
    const insertGpu = (index: number, uuid: string) => (tx: Tx) =>
      tx.run(
        `INSERT INTO gpus (id, host_id, "index", model, product_name, memory_mib, pci_address, uuid, created_at, updated_at)
         VALUES ($1, $2, $3, 'h100-80gb', 'NVIDIA H100', 81559, '0000:19:00.0', $4, $5, $5)`,
        [ids.next(), host.id, index, uuid, tx.dialect.ts(T0)],
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
    const modes = await db().uow.read((tx) => tx.rows<{ mig_mode: string }>('SELECT mig_mode FROM gpus WHERE uuid = $1', ['GPU-other']));
    expect(modes).toEqual([{ mig_mode: 'disabled' }]);
  });
});

reportSkippedPostgres('schema');
