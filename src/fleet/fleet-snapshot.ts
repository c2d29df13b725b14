import { onSettled, type Tx } from '../database/unit-of-work';
import type { SchedulerGpu, SchedulerHost } from '../scheduler/scheduler.types';
import type { PlacementResources } from './fleet.repository';

/**
 * How long one reading of the fleet serves placements. Changes made in this process are applied to it as
 * they are written; what other replicas change (PostgreSQL) shows up within this time, or at once where it
 * matters (placement.service.ts `plan`).
 */
export const FLEET_SNAPSHOT_TTL_MS = 2_000;

/** A GPU as the snapshot keeps it: the scheduler's view, and the VM it is bound to whole. */
export type SnapshotGpu = SchedulerGpu & { vmId: string | null };

/** A placeable host as the snapshot keeps it. */
export type SnapshotHost = SchedulerHost & { hypervisorUri: string | null; gpus: SnapshotGpu[] };

/** Host versions are unique in the process, so a policy's memo of a host never outlives a new reading. */
let lastVersion = 0;
const nextVersion = (): number => ++lastVersion;

/** A change this process wrote, as it applies to whichever reading is current. */
type Change = () => void;

/** What a reading needs to be kept: the snapshot's epoch and its count of settled changes when it began. */
export interface ReadingStart {
  epoch: number;
  settled: number;
}

/**
 * The active, reachable hosts with their GPUs as placement last read them, kept between requests so a
 * create does not read the whole fleet (docs/design.md §9). It is only ever a hint: every claim is a
 * conditional UPDATE, so a stale snapshot can cost a re-plan, never an over-committed host or a GPU bound
 * twice.
 *
 * FleetRepository, the one writer of hosts and GPUs, keeps it current. A claim or release of a host's
 * capacity or of whole GPUs is applied to it when the statement succeeds, and each host it touches gets a new
 * version (the policy redoes only what it had worked out for those). Every other change (a host registered,
 * drained or renamed, a GPU's sharing mode, a fractional claim) drops it, to be read again by the next
 * placement; so does a transaction that applied a change and then did not commit.
 *
 * A claim is applied as soon as its statement succeeds, so concurrent placements in this process do not
 * choose what it takes; a release once its transaction commits. A reading that does not see other
 * transactions' uncommitted writes (PostgreSQL) gets the claims still uncommitted when it is kept, and the
 * changes committed while it was read, applied again; on SQLite a reading shares the writer's connection and
 * has them already.
 */
export class FleetSnapshot {
  private hosts: SnapshotHost[] | null = null;
  private readonly byId = new Map<string, SnapshotHost>();
  private readonly gpuById = new Map<string, { gpu: SnapshotGpu; host: SnapshotHost }>();
  /** Whole GPUs by the VM bound to them. */
  private readonly boundTo = new Map<string, Set<string>>();
  private readAt = 0;
  /** Changes at each drop: a reading begun before a drop is not kept. */
  private epoch = 0;
  /** Changes applied whose transaction has not ended. */
  private readonly uncommitted = new Set<Change>();
  /** Changes committed while a reading was under way, each with its place in the count of settled changes. */
  private recentlyCommitted: { change: Change; at: number }[] = [];
  private settledCount = 0;
  private readingsUnderWay = 0;
  /** Readings kept so far. */
  private readings = 0;
  /** Whether the last reading saw this process's uncommitted writes (SQLite's one connection). */
  private seesUncommitted = true;

  constructor(
    private readonly now: () => number,
    private readonly ttlMs = FLEET_SNAPSHOT_TTL_MS,
  ) {}

  /** The hosts, or null when there is no reading young enough. */
  current(): readonly SnapshotHost[] | null {
    if (this.hosts && this.now() - this.readAt >= this.ttlMs) this.drop();
    return this.hosts;
  }

  /** Call before reading the fleet; keep() or abandon() must follow. */
  begin(): ReadingStart {
    this.readingsUnderWay++;
    return { epoch: this.epoch, settled: this.settledCount };
  }

  abandon(): void {
    this.readingEnded();
  }

  /**
   * Keeps a reading of every placeable host, unless the snapshot was dropped since it began. `seesUncommitted`:
   * the reading ran where this process's uncommitted writes are visible (SQLite's one connection).
   */
  keep(start: ReadingStart, hosts: SnapshotHost[], seesUncommitted: boolean): void {
    const missed = seesUncommitted ? [] : [...this.uncommitted, ...this.recentlyCommitted.filter((c) => c.at > start.settled).map((c) => c.change)];
    this.readingEnded();
    if (start.epoch !== this.epoch) return;
    this.clear();
    this.hosts = hosts;
    this.readAt = this.now();
    this.readings++;
    this.seesUncommitted = seesUncommitted;
    for (const host of hosts) {
      host.version = nextVersion();
      this.byId.set(host.id, host);
      for (const gpu of host.gpus) {
        this.gpuById.set(gpu.id, { gpu, host });
        if (gpu.vmId !== null) this.bound(gpu.vmId).add(gpu.id);
      }
    }
    for (const change of missed) change();
  }

  /** Forgets the reading: the next placement reads the fleet again. */
  drop(): void {
    this.clear();
    this.epoch++;
  }

  /** The host's CPU, memory and disk in use changed by `sign` × `need`. */
  hostChanged(tx: Tx, hostId: string, need: PlacementResources, sign: 1 | -1): void {
    this.record(tx, () => {
      const host = this.byId.get(hostId);
      if (!host) return;
      host.usedCpuCores += sign * need.cpuCores;
      host.usedMemoryMib += sign * need.memoryMib;
      host.usedDiskGib += sign * need.diskGib;
      host.version = nextVersion();
    }, sign === 1 ? 'now' : 'commit');
  }

  /** The GPUs were bound whole to the VM. */
  gpusBound(tx: Tx, vmId: string, gpuIds: readonly string[]): void {
    this.record(tx, () => {
      for (const id of gpuIds) {
        const found = this.gpuById.get(id);
        if (!found) continue;
        Object.assign(found.gpu, { free: false, vmId });
        found.host.version = nextVersion();
        this.bound(vmId).add(id);
      }
    }, 'now');
  }

  /** The VM's whole GPUs (those of `gpuIds`, or all) were freed. */
  gpusUnbound(tx: Tx, vmId: string, gpuIds?: readonly string[]): void {
    this.record(tx, () => {
      const held = this.boundTo.get(vmId);
      if (!held) return;
      for (const id of gpuIds ?? [...held]) {
        const found = held.delete(id) ? this.gpuById.get(id) : undefined;
        if (!found) continue;
        Object.assign(found.gpu, { free: true, vmId: null });
        found.host.version = nextVersion();
      }
      if (held.size === 0) this.boundTo.delete(vmId);
    }, 'commit');
  }

  /**
   * Applies a change: a claim at once (concurrent placements must not choose what it takes), a release only
   * once committed (until then what it frees is still held, and a GPU chosen from it would be found bound).
   */
  private record(tx: Tx, change: Change, at: 'now' | 'commit'): void {
    const reading = this.readings;
    if (at === 'now') change();
    const tracked = onSettled(tx, (committed) => {
      this.uncommitted.delete(change);
      this.settledCount++;
      // A reading on the writer's connection (SQLite) kept since the statement ran has the change already.
      const inReading = this.seesUncommitted && this.readings !== reading;
      if (at === 'now' && !committed) this.drop();
      else if (at === 'commit' && !committed && inReading) this.drop();
      else if (at === 'commit' && committed && !inReading) change();
      if (committed && this.readingsUnderWay > 0) this.recentlyCommitted.push({ change, at: this.settledCount });
    });
    // Written outside a unit of work (nothing tells when it commits): read again rather than guess.
    if (!tracked) this.drop();
    else if (at === 'now') this.uncommitted.add(change);
  }

  private readingEnded(): void {
    if (--this.readingsUnderWay === 0) this.recentlyCommitted = [];
  }

  private bound(vmId: string): Set<string> {
    let ids = this.boundTo.get(vmId);
    if (!ids) this.boundTo.set(vmId, (ids = new Set()));
    return ids;
  }

  private clear(): void {
    this.hosts = null;
    this.byId.clear();
    this.gpuById.clear();
    this.boundTo.clear();
  }
}
