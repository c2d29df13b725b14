import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/unit-of-work';
import { placeholders } from '../database/sql-dialect';
import { VmStatus } from './vm.entity';
import type { VmView } from './vm-view';

interface VmRow {
  id: string;
  owner_id: string;
  name: string;
  cpu_cores: number;
  memory: number;
  disk_size: number;
  public_ip: string | null;
  labels: string;
  status: VmStatus;
  status_reason: string | null;
  host_id: string | null;
  gpu_count: number;
  gpu_model: string | null;
  hypervisor_id: string | null;
  released_at: unknown;
  deleted_at: unknown;
  created_at: unknown;
  updated_at: unknown;
}

export interface VmListFilter {
  ownerId: string | null;
  status: VmStatus | null;
  label: string | null;
  beforeId: string | null;
  limit: number;
}

export interface VmChanges {
  status: VmStatus;
  statusReason?: string | null;
  hypervisorId?: string;
  deletedAt?: Date;
  /** Set only while released_at is still null, so resources are given back once. */
  releasedAt?: Date;
}

const VIEW_COLUMNS = `v.id, v.owner_id, v.name, v.cpu_cores, v.memory, v.disk_size, v.public_ip, v.labels, v.status,
  v.status_reason, v.host_id, v.gpu_count, v.gpu_model, v.hypervisor_id, v.released_at, v.deleted_at, v.created_at, v.updated_at`;

interface HostLabel {
  name: string;
  region: string;
}

/**
 * VM rows in plain SQL: these are the API's hot paths, so rows are read
 * straight into VmView without ORM hydration. Status changes are conditional
 * on the expected current status.
 */
@Injectable()
export class VmsRepository {
  private readonly listSql = new Map<string, string>();
  /**
   * Host name and region by id. Both are fixed when a host is registered
   * (only its state can change), so every replica may keep them. Joining
   * `hosts` instead made each VM read scan that table, whose rows are
   * rewritten by every create and delete: on PostgreSQL it bloats between
   * vacuums and GET /vms/{id} fell to a third of its speed after a burst of writes.
   */
  private readonly hostLabels = new Map<string, HostLabel>();

  async insert(tx: Tx, vm: VmView): Promise<void> {
    const d = tx.dialect;
    await tx.run(
      `INSERT INTO vms (id, owner_id, name, cpu_cores, memory, disk_size, public_ip, labels, status, status_reason,
         host_id, gpu_count, gpu_model, hypervisor_id, released_at, deleted_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
      [
        vm.id,
        vm.ownerId,
        vm.name,
        vm.cpuCores,
        vm.memory,
        vm.diskSize,
        vm.publicIp,
        JSON.stringify(vm.labels),
        vm.status,
        vm.statusReason,
        vm.hostId,
        vm.gpuCount,
        vm.gpuModel,
        vm.hypervisorId,
        d.tsOrNull(vm.releasedAt),
        d.tsOrNull(vm.deletedAt),
        d.ts(vm.createdAt),
        d.ts(vm.updatedAt),
      ],
    );
    for (const label of new Set(vm.labels)) {
      await tx.run('INSERT INTO vm_labels (vm_id, label) VALUES ($1, $2)', [vm.id, label]);
    }
  }

  async findById(tx: Tx, id: string): Promise<VmView | null> {
    const row = await tx.one<VmRow>(`SELECT ${VIEW_COLUMNS} FROM vms v WHERE v.id = $1`, [id]);
    return row ? (await this.toViews(tx, [row]))[0] : null;
  }

  async findByIds(tx: Tx, ids: string[]): Promise<VmView[]> {
    if (ids.length === 0) return [];
    const rows = await tx.rows<VmRow>(`SELECT ${VIEW_COLUMNS} FROM vms v WHERE v.id IN (${placeholders(ids.length)})`, ids);
    return this.toViews(tx, rows);
  }

  /** Newest first, by id (UUIDv7 ids are time-ordered); keyset pagination with `beforeId`. */
  async list(tx: Tx, filter: VmListFilter): Promise<VmView[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    const add = (clause: string, value: unknown) => {
      params.push(value);
      where.push(clause.replace('?', `$${params.length}`));
    };
    if (filter.ownerId) add('v.owner_id = ?', filter.ownerId);
    if (filter.status) add('v.status = ?', filter.status);
    else where.push(`v.status <> 'deleted'`);
    if (filter.label) add('EXISTS (SELECT 1 FROM vm_labels l WHERE l.vm_id = v.id AND l.label = ?)', filter.label);
    if (filter.beforeId) add('v.id < ?', filter.beforeId);
    params.push(filter.limit);
    const shape = where.join(' AND ');
    let sql = this.listSql.get(shape);
    if (!sql) {
      sql = `SELECT ${VIEW_COLUMNS} FROM vms v WHERE ${shape} ORDER BY v.id DESC LIMIT $${params.length}`;
      this.listSql.set(shape, sql);
    }
    return this.toViews(tx, await tx.rows<VmRow>(sql, params));
  }

  async publicIpInUse(tx: Tx, publicIp: string): Promise<boolean> {
    const row = await tx.one('SELECT 1 AS one FROM vms WHERE public_ip = $1 AND released_at IS NULL', [publicIp]);
    return row !== undefined;
  }

  /** Applies the change only if the VM is still in one of `from`; returns whether it did. */
  async transition(tx: Tx, id: string, from: readonly VmStatus[], changes: VmChanges, updatedAt: Date): Promise<boolean> {
    const d = tx.dialect;
    const params: unknown[] = [id, changes.status, d.ts(updatedAt)];
    const sets = ['status = $2', 'updated_at = $3'];
    if (changes.statusReason !== undefined) {
      params.push(changes.statusReason);
      sets.push(`status_reason = $${params.length}`);
    }
    if (changes.hypervisorId !== undefined) {
      params.push(changes.hypervisorId);
      sets.push(`hypervisor_id = $${params.length}`);
    }
    if (changes.deletedAt !== undefined) {
      params.push(d.ts(changes.deletedAt));
      sets.push(`deleted_at = $${params.length}`);
    }
    let releasedGuard = '';
    if (changes.releasedAt !== undefined) {
      params.push(d.ts(changes.releasedAt));
      sets.push(`released_at = $${params.length}`);
      releasedGuard = ' AND released_at IS NULL';
    }
    const fromList = from.map((status) => {
      params.push(status);
      return `$${params.length}`;
    });
    const changed = await tx.run(`UPDATE vms SET ${sets.join(', ')} WHERE id = $1 AND status IN (${fromList.join(', ')})${releasedGuard}`, params);
    return changed === 1;
  }

  /** Marks the VM's resources as given back; true only for the first caller, so release happens once. */
  async markReleased(tx: Tx, id: string, now: Date): Promise<boolean> {
    return (await tx.run('UPDATE vms SET released_at = $2 WHERE id = $1 AND released_at IS NULL', [id, tx.dialect.ts(now)])) === 1;
  }

  countByStatus(tx: Tx): Promise<{ status: VmStatus; count: number }[]> {
    return tx.rows('SELECT status, CAST(COUNT(*) AS INTEGER) AS count FROM vms GROUP BY status');
  }

  /** VMs that hold resources or have work in flight: what the reconciler compares with the hypervisor. */
  async listLive(tx: Tx): Promise<VmView[]> {
    const rows = await tx.rows<VmRow>(
      `SELECT ${VIEW_COLUMNS} FROM vms v WHERE v.released_at IS NULL OR v.status IN ('provisioning', 'deleting')`,
    );
    return this.toViews(tx, rows);
  }

  private async toViews(tx: Tx, rows: VmRow[]): Promise<VmView[]> {
    const unknown = new Set<string>();
    for (const r of rows) if (r.host_id !== null && !this.hostLabels.has(r.host_id)) unknown.add(r.host_id);
    if (unknown.size > 0) {
      const ids = [...unknown];
      const found = await tx.rows<{ id: string; name: string; region: string }>(
        `SELECT id, name, region FROM hosts WHERE id IN (${placeholders(ids.length)})`,
        ids,
      );
      for (const h of found) this.hostLabels.set(h.id, { name: h.name, region: h.region });
    }
    return rows.map((r) => this.toView(tx, r));
  }

  private toView(tx: Tx, r: VmRow): VmView {
    const d = tx.dialect;
    const host = r.host_id === null ? undefined : this.hostLabels.get(r.host_id);
    return {
      id: r.id,
      ownerId: r.owner_id,
      name: r.name,
      cpuCores: r.cpu_cores,
      memory: r.memory,
      diskSize: r.disk_size,
      publicIp: r.public_ip,
      labels: JSON.parse(r.labels) as string[],
      status: r.status,
      statusReason: r.status_reason,
      hostId: r.host_id,
      hostName: host?.name ?? null,
      region: host?.region ?? null,
      gpuCount: r.gpu_count,
      gpuModel: r.gpu_model,
      hypervisorId: r.hypervisor_id,
      releasedAt: d.dateOrNull(r.released_at),
      deletedAt: d.dateOrNull(r.deleted_at),
      createdAt: d.date(r.created_at),
      updatedAt: d.date(r.updated_at),
    };
  }
}
