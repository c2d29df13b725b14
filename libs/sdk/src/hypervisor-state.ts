import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeviceBusyError, VmNotFoundError } from './errors';
import type { DiskRef, PowerState, VirtualMachine, VmMetadata } from './virtual-machine';

interface VmRow {
  id: string;
  name: string;
  cpu_cores: number;
  memory: number;
  disk_size: number;
  public_ip: string | null;
  host: string | null;
  gpus: string;
  labels: string;
  created_at: string;
  power_state: string;
  metadata: string | null;
  uri: string | null;
  ssh_key_comments: string;
}

interface DiskRow {
  hypervisor_id: string;
  host: string | null;
  uri: string | null;
  volume: string;
  size_gib: number;
}

/** A VM row as the simulator stores it: the VM, where it was asked to be, and what its console prints. */
export interface StoredVm {
  vm: VirtualMachine;
  uri: string | null;
  sshKeyComments: string[];
}

interface QueuedWrite {
  write: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** Columns added after the first release, with their definitions; an older state file gains them on open. */
const ADDED_COLUMNS: [string, string][] = [
  ['power_state', "TEXT NOT NULL DEFAULT 'running'"],
  ['metadata', 'TEXT'],
  ['uri', 'TEXT'],
  ['ssh_key_comments', "TEXT NOT NULL DEFAULT '[]'"],
];

/**
 * The simulated hypervisor's own durable state: one row per VM that exists on
 * the hypervisor, and one per disk kept by a shelve, in its own SQLite file,
 * separate from the platform's database. Several processes may share one file
 * (WAL + busy timeout).
 *
 * Writes that arrive in the same turn of the event loop share one commit,
 * and none is acknowledged before that commit:
 * a commit per VM was a fifth of the simulator's cost under load.
 */
export class HypervisorState {
  private readonly db: Database.Database;
  private readonly insertVm: (stored: StoredVm) => void;
  private readonly deleteStmt: Database.Statement<[string]>;
  private readonly deleteDiskStmt: Database.Statement<[string]>;
  private readonly getStmt: Database.Statement<[string], VmRow>;
  private readonly getDiskStmt: Database.Statement<[string], DiskRow>;
  private readonly listStmt: Database.Statement<[], VmRow>;
  private readonly powerStmt: Database.Statement<[string, string]>;
  private readonly resizeStmt: Database.Statement<{ id: string; cpu_cores: number; memory: number; gpus: string }>;
  private readonly insertDiskStmt: Database.Statement<DiskRow & { shelved_at: string }>;
  private readonly busyDevices: (gpus: string[], exceptVm: string | null) => string[];
  private readonly commitGroup: (writes: QueuedWrite[]) => { ok: boolean; value: unknown }[];
  private queue: QueuedWrite[] = [];

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.migrate();
    const busy = this.db.prepare<[string, string], { gpu: string }>(
      `SELECT DISTINCT g.value AS gpu FROM vms, json_each(vms.gpus) AS g WHERE g.value IN (SELECT value FROM json_each(?)) AND vms.id <> ?`,
    );
    this.busyDevices = (gpus, exceptVm) => (gpus.length === 0 ? [] : busy.all(JSON.stringify(gpus), exceptVm ?? '').map((r) => r.gpu));
    const insert = this.db.prepare(
      `INSERT INTO vms (id, name, cpu_cores, memory, disk_size, public_ip, host, gpus, labels, created_at, power_state, metadata, uri, ssh_key_comments)
       VALUES (@id, @name, @cpu_cores, @memory, @disk_size, @public_ip, @host, @gpus, @labels, @created_at, @power_state, @metadata, @uri, @ssh_key_comments)`,
    );
    // IMMEDIATE takes the write lock before the check, so two processes cannot both see a device as free.
    const tx = this.db.transaction(({ vm, uri, sshKeyComments }: StoredVm) => {
      const taken = this.busyDevices(vm.gpus, null);
      if (taken.length > 0) throw new DeviceBusyError(taken);
      insert.run({
        ...vm,
        gpus: JSON.stringify(vm.gpus),
        labels: JSON.stringify(vm.labels),
        metadata: vm.metadata ? JSON.stringify(vm.metadata) : null,
        uri,
        ssh_key_comments: JSON.stringify(sshKeyComments),
      });
    });
    this.insertVm = (stored) => tx(stored);
    this.deleteStmt = this.db.prepare('DELETE FROM vms WHERE id = ?');
    this.deleteDiskStmt = this.db.prepare('DELETE FROM shelved_disks WHERE hypervisor_id = ?');
    // A refused write is undone alone: inside the group, a write's own transaction runs as a savepoint; a delete is one statement per table.
    const group = this.db.transaction((writes: QueuedWrite[]) =>
      writes.map((write) => {
        try {
          return { ok: true, value: write.write() };
        } catch (error) {
          return { ok: false, value: error };
        }
      }),
    );
    this.commitGroup = (writes) => group.immediate(writes);
    this.getStmt = this.db.prepare('SELECT * FROM vms WHERE id = ?');
    this.getDiskStmt = this.db.prepare('SELECT hypervisor_id, host, uri, volume, size_gib FROM shelved_disks WHERE hypervisor_id = ?');
    this.listStmt = this.db.prepare('SELECT * FROM vms ORDER BY created_at, id');
    this.powerStmt = this.db.prepare('UPDATE vms SET power_state = ? WHERE id = ?');
    this.resizeStmt = this.db.prepare('UPDATE vms SET cpu_cores = @cpu_cores, memory = @memory, gpus = @gpus WHERE id = @id');
    this.insertDiskStmt = this.db.prepare(
      'INSERT INTO shelved_disks (hypervisor_id, host, uri, volume, size_gib, shelved_at) VALUES (@hypervisor_id, @host, @uri, @volume, @size_gib, @shelved_at)',
    );
  }

  /** Creates the tables, and adds the columns an older state file lacks; under the write lock, so processes opening one file together agree. */
  private migrate(): void {
    this.db.transaction(() => {
      this.db.exec(`CREATE TABLE IF NOT EXISTS vms (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        cpu_cores INTEGER NOT NULL,
        memory INTEGER NOT NULL,
        disk_size INTEGER NOT NULL,
        public_ip TEXT,
        host TEXT,
        gpus TEXT NOT NULL DEFAULT '[]',
        labels TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
      )`);
      const present = new Set(this.db.prepare<[], { name: string }>('SELECT name FROM pragma_table_info(\'vms\')').all().map((c) => c.name));
      for (const [column, definition] of ADDED_COLUMNS) {
        if (!present.has(column)) this.db.exec(`ALTER TABLE vms ADD COLUMN ${column} ${definition}`);
      }
      this.db.exec(`CREATE TABLE IF NOT EXISTS shelved_disks (
        hypervisor_id TEXT PRIMARY KEY,
        host TEXT,
        uri TEXT,
        volume TEXT NOT NULL,
        size_gib INTEGER NOT NULL,
        shelved_at TEXT NOT NULL
      )`);
    }).immediate();
  }

  /** Inserts the VM; rejects with DeviceBusyError if one of its devices is attached to a live VM. */
  add(stored: StoredVm): Promise<void> {
    return this.enqueue(() => this.insertVm(stored)).then(() => undefined);
  }

  /** Removes the VM and any disk it has shelved. */
  remove(id: string): Promise<boolean> {
    return this.enqueue(() => {
      const vm = this.deleteStmt.run(id).changes;
      const disk = this.deleteDiskStmt.run(id).changes;
      return vm + disk > 0;
    }) as Promise<boolean>;
  }

  /** Sets the VM's power state; rejects with VmNotFoundError when it is gone. */
  setPowerState(id: string, state: PowerState): Promise<void> {
    return this.enqueue(() => {
      if (this.powerStmt.run(state, id).changes === 0) throw new VmNotFoundError(id);
    }).then(() => undefined);
  }

  /** Changes the size; rejects with DeviceBusyError if a new device is attached to another live VM. */
  resize(id: string, size: { cpuCores: number; memory: number; gpus: string[] }): Promise<void> {
    const write = this.db.transaction(() => {
      const taken = this.busyDevices(size.gpus, id);
      if (taken.length > 0) throw new DeviceBusyError(taken);
      const changed = this.resizeStmt.run({ id, cpu_cores: size.cpuCores, memory: size.memory, gpus: JSON.stringify(size.gpus) }).changes;
      if (changed === 0) throw new VmNotFoundError(id);
    });
    return this.enqueue(() => write()).then(() => undefined);
  }

  /** Removes the VM and keeps its disk, in one step; a VM already shelved answers with its disk. */
  shelve(id: string, volume: string, shelvedAt: string): Promise<DiskRef> {
    const write = this.db.transaction((): DiskRef => {
      const kept = this.getDiskStmt.get(id);
      if (kept) return toDiskRef(kept);
      const row = this.getStmt.get(id);
      if (!row) throw new VmNotFoundError(id);
      const disk: DiskRow = { hypervisor_id: id, host: row.host, uri: row.uri, volume, size_gib: row.disk_size };
      this.insertDiskStmt.run({ ...disk, shelved_at: shelvedAt });
      this.deleteStmt.run(id);
      return toDiskRef(disk);
    });
    return this.enqueue(() => write()) as Promise<DiskRef>;
  }

  /** Makes the VM again from its kept disk, in one step; a VM already back is left as it is. */
  unshelve(stored: StoredVm): Promise<void> {
    const write = this.db.transaction(() => {
      if (this.getStmt.get(stored.vm.id)) return;
      if (this.deleteDiskStmt.run(stored.vm.id).changes === 0) throw new VmNotFoundError(stored.vm.id);
      this.insertVm(stored);
    });
    return this.enqueue(() => write()).then(() => undefined);
  }

  private enqueue(write: () => unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const writes = this.queue;
    this.queue = [];
    let outcomes: { ok: boolean; value: unknown }[];
    try {
      outcomes = this.commitGroup(writes);
    } catch (error) {
      // The commit itself failed (e.g. the database is busy past its timeout): nothing in the group happened.
      for (const write of writes) write.reject(error);
      return;
    }
    writes.forEach((write, i) => (outcomes[i].ok ? write.resolve(outcomes[i].value) : write.reject(outcomes[i].value)));
  }

  get(id: string): StoredVm | null {
    const row = this.getStmt.get(id);
    return row ? toStored(row) : null;
  }

  list(): VirtualMachine[] {
    return this.listStmt.all().map((row) => toStored(row).vm);
  }

  close(): void {
    if (this.queue.length > 0 && this.db.open) this.flush();
    if (this.db.open) this.db.close();
  }
}

function toStored(row: VmRow): StoredVm {
  return {
    vm: {
      id: row.id,
      name: row.name,
      cpu_cores: row.cpu_cores,
      memory: row.memory,
      disk_size: row.disk_size,
      public_ip: row.public_ip,
      labels: JSON.parse(row.labels) as string[],
      host: row.host,
      gpus: JSON.parse(row.gpus) as string[],
      created_at: row.created_at,
      power_state: row.power_state as PowerState,
      metadata: row.metadata ? (JSON.parse(row.metadata) as VmMetadata) : null,
    },
    uri: row.uri,
    sshKeyComments: JSON.parse(row.ssh_key_comments) as string[],
  };
}

function toDiskRef(row: DiskRow): DiskRef {
  return { hypervisorId: row.hypervisor_id, host: row.host, uri: row.uri, pool: null, volume: row.volume, sizeGib: row.size_gib };
}
