import { onRollback, type Tx } from '../database/unit-of-work';
import type { SchedulerGpu, SchedulerHost } from '../scheduler/scheduler.types';
import type { PlacementResources } from './fleet.repository';

/**
 * How long one reading of the fleet serves placements. Changes made in this process are applied to it as
 * they are written; what other replicas change (PostgreSQL) shows up within this time, or at once when it
 * makes a plan fail (a claim that finds the host full re-plans from a new reading).
 */
export const FLEET_SNAPSHOT_TTL_MS = 2_000;

/** A GPU as the snapshot keeps it: the scheduler's view, and the VM it is bound to whole. */
export type SnapshotGpu = SchedulerGpu & { vmId: string | null };

/** A placeable host as the snapshot keeps it. */
export type SnapshotHost = SchedulerHost & { hypervisorUri: string | null; gpus: SnapshotGpu[] };

/** Host versions are unique in the process, so a policy's memo of a host never outlives a new reading. */
let lastVersion = 0;
const nextVersion = (): number => ++lastVersion;

/**
 * The active, reachable hosts with their GPUs as placement last read them, kept between requests so a
 * create does not read the whole fleet (docs/design.md §9, "The fleet snapshot"). It is only ever a hint:
 * every claim is a conditional UPDATE, so a stale snapshot can cost a re-plan, never an over-committed host
 * or a GPU bound twice.
 *
 * FleetRepository, the one writer of hosts and GPUs, keeps it current: a claim or release of a host's
 * capacity or of whole GPUs is applied to it when the statement succeeds (each host's version changes, so
 * the policy's memo of it is redone); every other change (a host registered, drained or renamed, a GPU's
 * sharing mode, a fractional claim) drops it, to be read again by the next placement. If the transaction that
 * made an applied change does not commit, the snapshot is dropped as well (onRollback).
 */
export class FleetSnapshot {
  private hosts: SnapshotHost[] | null = null;
  private readonly byId = new Map<string, SnapshotHost>();
  /** Whole GPUs by the VM bound to them. */
  private readonly boundTo = new Map<string, SnapshotGpu[]>();
  private readonly hostOfGpu = new Map<SnapshotGpu, SnapshotHost>();
  private readAt = 0;
  /** Changes at each drop: a reading begun before a drop is not kept. */
  private epoch = 0;

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = FLEET_SNAPSHOT_TTL_MS,
  ) {}

  /** The hosts, or null when there is no reading young enough. */
  current(): readonly SnapshotHost[] | null {
    if (this.hosts && this.now() - this.readAt >= this.ttlMs) this.drop();
    return this.hosts;
  }

  /** Call before reading the fleet; keep() needs what it returns. */
  begin(): number {
    return this.epoch;
  }

  /** Keeps a reading of every placeable host, unless the snapshot was dropped since `begun`. */
  keep(begun: number, hosts: SnapshotHost[]): void {
    if (begun !== this.epoch) return;
    this.drop();
    this.hosts = hosts;
    this.readAt = this.now();
    for (const host of hosts) {
      host.version = nextVersion();
      this.byId.set(host.id, host);
      for (const gpu of host.gpus) {
        this.hostOfGpu.set(gpu, host);
        if (gpu.vmId !== null) this.bound(gpu.vmId).push(gpu);
      }
    }
  }

  drop(): void {
    this.hosts = null;
    this.byId.clear();
    this.boundTo.clear();
    this.hostOfGpu.clear();
    this.epoch++;
  }

  /** The host's CPU, memory and disk in use changed by `sign` × `need`. */
  hostChanged(tx: Tx, hostId: string, need: PlacementResources, sign: 1 | -1): void {
    const host = this.byId.get(hostId);
    if (!host) return;
    host.usedCpuCores += sign * need.cpuCores;
    host.usedMemoryMib += sign * need.memoryMib;
    host.usedDiskGib += sign * need.diskGib;
    this.changed(tx, host);
  }

  /** The GPUs (on the host) were bound whole to the VM. */
  gpusBound(tx: Tx, vmId: string, hostId: string, gpuIds: readonly string[]): void {
    const host = this.byId.get(hostId);
    if (!host) return;
    for (const gpu of host.gpus) {
      if (!gpuIds.includes(gpu.id)) continue;
      Object.assign(gpu, { free: false, vmId });
      this.bound(vmId).push(gpu);
    }
    this.changed(tx, host);
  }

  /** The VM's whole GPUs (those of `gpuIds`, or all) were freed. */
  gpusUnbound(tx: Tx, vmId: string, gpuIds?: readonly string[]): void {
    const held = this.boundTo.get(vmId);
    if (!held) return;
    const freed = gpuIds ? held.filter((gpu) => gpuIds.includes(gpu.id)) : held;
    for (const gpu of freed) {
      Object.assign(gpu, { free: true, vmId: null });
      const host = this.hostOfGpu.get(gpu);
      if (host) this.changed(tx, host);
    }
    const kept = held.filter((gpu) => !freed.includes(gpu));
    if (kept.length > 0) this.boundTo.set(vmId, kept);
    else this.boundTo.delete(vmId);
  }

  private bound(vmId: string): SnapshotGpu[] {
    let gpus = this.boundTo.get(vmId);
    if (!gpus) this.boundTo.set(vmId, (gpus = []));
    return gpus;
  }

  private changed(tx: Tx, host: SnapshotHost): void {
    host.version = nextVersion();
    onRollback(tx, () => this.drop());
  }
}
