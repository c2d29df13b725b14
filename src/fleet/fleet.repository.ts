import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/unit-of-work';
import { placeholders } from '../database/sql-dialect';
import type { SchedulerHost } from '../scheduler/scheduler.types';
import { GpuEntity } from './gpu.entity';
import { HostEntity, HostState } from './host.entity';

export interface GpuDetail {
  id: string;
  hostId: string;
  index: number;
  model: string;
  memoryMib: number;
  pciAddress: string;
  uuid: string;
}

export interface PlacementResources {
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
}

interface HostRow {
  id: string;
  name: string;
  region: string;
  state: HostState;
  cpu_cores: number;
  memory_mib: number;
  disk_gib: number;
  used_cpu_cores: number;
  used_memory_mib: number;
  used_disk_gib: number;
}


interface GpuDetailRow {
  id: string;
  host_id: string;
  index: number;
  model: string;
  memory_mib: number;
  pci_address: string;
  uuid: string;
}

function toGpuDetail(r: GpuDetailRow): GpuDetail {
  return { id: r.id, hostId: r.host_id, index: r.index, model: r.model, memoryMib: r.memory_mib, pciAddress: r.pci_address, uuid: r.uuid };
}

const FITTING_HOSTS = `h.state = 'active'
  AND h.cpu_cores - h.used_cpu_cores >= $1 AND h.memory_mib - h.used_memory_mib >= $2 AND h.disk_gib - h.used_disk_gib >= $3
  AND ($4 = '' OR h.region = $4)`;

/** Hosts and GPUs: registration through TypeORM, the placement hot path in plain SQL. */
@Injectable()
export class FleetRepository {
  private readonly bindSql = new Map<number, string>();

  async insertHost(tx: Tx, host: HostEntity, gpus: GpuEntity[]): Promise<void> {
    await tx.manager.insert(HostEntity, host);
    if (gpus.length > 0) await tx.manager.insert(GpuEntity, gpus);
  }

  findHost(tx: Tx, id: string): Promise<HostEntity | null> {
    return tx.manager.findOne(HostEntity, { where: { id }, relations: { gpus: true }, order: { gpus: { index: 'ASC' } } });
  }

  listHosts(tx: Tx): Promise<HostEntity[]> {
    return tx.manager.find(HostEntity, { relations: { gpus: true }, order: { name: 'ASC', gpus: { index: 'ASC' } } });
  }

  async hostNameExists(tx: Tx, name: string): Promise<boolean> {
    return (await tx.manager.countBy(HostEntity, { name })) > 0;
  }

  async existingGpuUuids(tx: Tx, uuids: string[]): Promise<string[]> {
    if (uuids.length === 0) return [];
    const rows = await tx.manager
      .createQueryBuilder(GpuEntity, 'g')
      .select('g.uuid', 'uuid')
      .where('g.uuid IN (:...uuids)', { uuids })
      .getRawMany<{ uuid: string }>();
    return rows.map((r) => r.uuid);
  }

  async setHostState(tx: Tx, id: string, state: HostState, updatedAt: Date): Promise<void> {
    await tx.manager.update(HostEntity, { id }, { state, updatedAt });
  }

  /** Active hosts with room for the request's CPU, memory and disk, with all their GPUs (one query). */
  async loadCandidates(tx: Tx, need: PlacementResources, region: string | null | undefined): Promise<SchedulerHost[]> {
    const rows = await tx.rows<HostRow & { gpu_id: string | null; gpu_index: number | null; gpu_model: string | null; gpu_vm_id: string | null }>(
      `SELECT h.id, h.name, h.region, h.state, h.cpu_cores, h.memory_mib, h.disk_gib, h.used_cpu_cores, h.used_memory_mib,
         h.used_disk_gib, g.id AS gpu_id, g."index" AS gpu_index, g.model AS gpu_model, g.vm_id AS gpu_vm_id
       FROM hosts h LEFT JOIN gpus g ON g.host_id = h.id
       WHERE ${FITTING_HOSTS}
       ORDER BY h.name, g."index"`,
      [need.cpuCores, need.memoryMib, need.diskGib, region ?? ''],
    );
    const hosts: SchedulerHost[] = [];
    let current = null as SchedulerHost | null;
    for (const r of rows) {
      if (current?.id !== r.id) {
        current = {
          id: r.id,
          name: r.name,
          region: r.region,
          state: r.state,
          cpuCores: r.cpu_cores,
          memoryMib: r.memory_mib,
          diskGib: r.disk_gib,
          usedCpuCores: r.used_cpu_cores,
          usedMemoryMib: r.used_memory_mib,
          usedDiskGib: r.used_disk_gib,
          gpus: [],
        };
        hosts.push(current);
      }
      if (r.gpu_id !== null) current.gpus.push({ id: r.gpu_id, index: r.gpu_index!, model: r.gpu_model!, free: r.gpu_vm_id === null });
    }
    return hosts;
  }

  /** Adds the VM's resources to the host only if they still fit and the host is active. */
  async claimHost(tx: Tx, hostId: string, need: PlacementResources, now: Date): Promise<boolean> {
    const changed = await tx.run(
      `UPDATE hosts SET used_cpu_cores = used_cpu_cores + $2, used_memory_mib = used_memory_mib + $3,
         used_disk_gib = used_disk_gib + $4, updated_at = $5
       WHERE id = $1 AND state = 'active' AND used_cpu_cores + $2 <= cpu_cores
         AND used_memory_mib + $3 <= memory_mib AND used_disk_gib + $4 <= disk_gib`,
      [hostId, need.cpuCores, need.memoryMib, need.diskGib, tx.dialect.ts(now)],
    );
    return changed === 1;
  }

  /** Binds the GPUs to the VM only if every one of them is still free; returns how many were bound. */
  async bindGpus(tx: Tx, vmId: string, hostId: string, gpuIds: string[], now: Date): Promise<number> {
    let sql = this.bindSql.get(gpuIds.length);
    if (!sql) {
      sql = `UPDATE gpus SET vm_id = $1, updated_at = $2 WHERE host_id = $3 AND vm_id IS NULL AND id IN (${placeholders(gpuIds.length, 4)})`;
      this.bindSql.set(gpuIds.length, sql);
    }
    return tx.run(sql, [vmId, tx.dialect.ts(now), hostId, ...gpuIds]);
  }

  async insertAllocations(tx: Tx, rows: { id: string; gpuId: string; vmId: string }[], now: Date): Promise<void> {
    const ts = tx.dialect.ts(now);
    for (const row of rows) {
      await tx.run(
        `INSERT INTO gpu_allocations (id, gpu_id, vm_id, released_at, created_at, updated_at) VALUES ($1, $2, $3, NULL, $4, $4)`,
        [row.id, row.gpuId, row.vmId, ts],
      );
    }
  }

  async releaseHost(tx: Tx, hostId: string, need: PlacementResources, now: Date): Promise<void> {
    await tx.run(
      `UPDATE hosts SET used_cpu_cores = used_cpu_cores - $2, used_memory_mib = used_memory_mib - $3,
         used_disk_gib = used_disk_gib - $4, updated_at = $5 WHERE id = $1`,
      [hostId, need.cpuCores, need.memoryMib, need.diskGib, tx.dialect.ts(now)],
    );
  }

  async unbindGpus(tx: Tx, vmId: string, now: Date): Promise<void> {
    const ts = tx.dialect.ts(now);
    await tx.run(`UPDATE gpus SET vm_id = NULL, updated_at = $2 WHERE vm_id = $1`, [vmId, ts]);
    await tx.run(`UPDATE gpu_allocations SET released_at = $2, updated_at = $2 WHERE vm_id = $1 AND released_at IS NULL`, [
      vmId,
      ts,
    ]);
  }

  /** The GPUs a VM holds or held, in device order. */
  async gpusOfVms(tx: Tx, vmIds: string[]): Promise<Map<string, GpuDetail[]>> {
    const result = new Map<string, GpuDetail[]>();
    if (vmIds.length === 0) return result;
    const rows = await tx.rows<GpuDetailRow & { vm_id: string }>(
      `SELECT a.vm_id, g.id, g.host_id, g."index", g.model, g.memory_mib, g.pci_address, g.uuid
       FROM gpu_allocations a JOIN gpus g ON g.id = a.gpu_id WHERE a.vm_id IN (${placeholders(vmIds.length)}) ORDER BY a.vm_id, g."index"`,
      vmIds,
    );
    for (const r of rows) {
      const list = result.get(r.vm_id) ?? [];
      list.push(toGpuDetail(r));
      result.set(r.vm_id, list);
    }
    return result;
  }

  async gpuDetails(tx: Tx, gpuIds: string[]): Promise<GpuDetail[]> {
    const rows = await tx.rows<GpuDetailRow>(
      `SELECT id, host_id, "index", model, memory_mib, pci_address, uuid FROM gpus WHERE id IN (${placeholders(gpuIds.length)}) ORDER BY "index"`,
      gpuIds,
    );
    return rows.map(toGpuDetail);
  }

  /** Per (region, model): totals, allocated, free on active hosts, and free on other hosts. */
  gpuCounts(tx: Tx): Promise<{ region: string; model: string; total: number; allocated: number; free: number; unavailable: number }[]> {
    return tx.rows(
      `SELECT h.region AS region, g.model AS model,
         CAST(COUNT(*) AS INTEGER) AS total,
         CAST(SUM(CASE WHEN g.vm_id IS NOT NULL THEN 1 ELSE 0 END) AS INTEGER) AS allocated,
         CAST(SUM(CASE WHEN g.vm_id IS NULL AND h.state = 'active' THEN 1 ELSE 0 END) AS INTEGER) AS free,
         CAST(SUM(CASE WHEN g.vm_id IS NULL AND h.state <> 'active' THEN 1 ELSE 0 END) AS INTEGER) AS unavailable
       FROM gpus g JOIN hosts h ON h.id = g.host_id
       GROUP BY h.region, g.model ORDER BY g.model, h.region`,
    );
  }

  /** Free GPUs per (region, model, host) on active hosts that can still take a minimal VM. */
  freeGpusPerHost(tx: Tx, need: PlacementResources): Promise<{ region: string; model: string; host_id: string; free: number }[]> {
    return tx.rows(
      `SELECT h.region AS region, g.model AS model, h.id AS host_id, CAST(COUNT(*) AS INTEGER) AS free
       FROM gpus g JOIN hosts h ON h.id = g.host_id
       WHERE g.vm_id IS NULL AND h.state = 'active'
         AND h.cpu_cores - h.used_cpu_cores >= $1 AND h.memory_mib - h.used_memory_mib >= $2 AND h.disk_gib - h.used_disk_gib >= $3
       GROUP BY h.region, g.model, h.id`,
      [need.cpuCores, need.memoryMib, need.diskGib],
    );
  }
}
