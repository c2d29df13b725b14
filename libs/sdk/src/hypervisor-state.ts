import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DeviceBusyError } from './errors';
import type { VirtualMachine } from './virtual-machine';

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
}

interface QueuedWrite {
  write: () => boolean | void;
  resolve: (value: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * The simulated hypervisor's own durable state: one row per VM that exists on
 * the hypervisor, in its own SQLite file, separate from the platform's
 * database. Several processes may share one file (WAL + busy timeout).
 *
 * Writes that arrive in the same turn of the event loop share one commit,
 * and none is acknowledged before that commit:
 * a commit per VM was a fifth of the simulator's cost under load.
 */
export class HypervisorState {
  private readonly db: Database.Database;
  private readonly insertVm: (vm: VirtualMachine) => void;
  private readonly deleteStmt: Database.Statement<[string]>;
  private readonly getStmt: Database.Statement<[string], VmRow>;
  private readonly listStmt: Database.Statement<[], VmRow>;
  private readonly commitGroup: (writes: QueuedWrite[]) => { ok: boolean; value: unknown }[];
  private queue: QueuedWrite[] = [];

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
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
    const busy = this.db.prepare<[string], { gpu: string }>(
      `SELECT DISTINCT g.value AS gpu FROM vms, json_each(vms.gpus) AS g WHERE g.value IN (SELECT value FROM json_each(?))`,
    );
    const insert = this.db.prepare(
      `INSERT INTO vms (id, name, cpu_cores, memory, disk_size, public_ip, host, gpus, labels, created_at)
       VALUES (@id, @name, @cpu_cores, @memory, @disk_size, @public_ip, @host, @gpus, @labels, @created_at)`,
    );
    // IMMEDIATE takes the write lock before the check, so two processes cannot both see a device as free.
    const tx = this.db.transaction((vm: VirtualMachine) => {
      if (vm.gpus.length > 0) {
        const taken = busy.all(JSON.stringify(vm.gpus)).map((r) => r.gpu);
        if (taken.length > 0) throw new DeviceBusyError(taken);
      }
      insert.run({ ...vm, gpus: JSON.stringify(vm.gpus), labels: JSON.stringify(vm.labels) });
    });
    this.insertVm = (vm) => tx(vm);
    this.deleteStmt = this.db.prepare('DELETE FROM vms WHERE id = ?');
    // A refused insert is undone alone: inside the group, insertVm's own transaction runs as a savepoint; a delete is one statement.
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
    this.listStmt = this.db.prepare('SELECT * FROM vms ORDER BY created_at, id');
  }

  /** Inserts the VM; rejects with DeviceBusyError if one of its devices is attached to a live VM. */
  add(vm: VirtualMachine): Promise<void> {
    return this.enqueue(() => this.insertVm(vm)).then(() => undefined);
  }

  remove(id: string): Promise<boolean> {
    return this.enqueue(() => this.deleteStmt.run(id).changes > 0);
  }

  private enqueue(write: () => boolean | void): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (value: boolean) => void, reject });
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
    writes.forEach((write, i) => (outcomes[i].ok ? write.resolve(outcomes[i].value as boolean) : write.reject(outcomes[i].value)));
  }

  get(id: string): VirtualMachine | null {
    const row = this.getStmt.get(id);
    return row ? toVm(row) : null;
  }

  list(): VirtualMachine[] {
    return this.listStmt.all().map(toVm);
  }

  close(): void {
    if (this.queue.length > 0 && this.db.open) this.flush();
    if (this.db.open) this.db.close();
  }
}

function toVm(row: VmRow): VirtualMachine {
  return {
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
  };
}
