import { findGpuProfile } from '../fleet/domain/gpu-profiles';
import type { HostShape } from '../fleet/feasibility';
import type { OperationEntity } from '../operations/operation.entity';
import type { PlacementRequest } from '../scheduler/scheduler.types';

/** The queue a request waits in: its GPU model and region, `*` for any. */
export function queueKeyOf(request: Pick<PlacementRequest, 'gpuModel' | 'region'>): string {
  return `${request.gpuModel ?? '*'}@${request.region ?? '*'}`;
}

export function parseQueueKey(key: string): { gpuModel: string | null; region: string | null } {
  const [model, region] = key.split('@');
  return { gpuModel: model === '*' ? null : model, region: region === '*' ? null : region };
}

export interface QueueStats {
  gpuModel: string | null;
  region: string | null;
  length: number;
  oldestAgeSeconds: number;
}

/** Each queue with requests waiting: its length and the age of its oldest request (`waiting` in arrival order). */
export function queueStats(waiting: readonly OperationEntity[], now: Date): QueueStats[] {
  const byKey = new Map<string, QueueStats>();
  for (const op of waiting) {
    const stats = byKey.get(op.queueKey!) ?? { ...parseQueueKey(op.queueKey!), length: 0, oldestAgeSeconds: Math.floor((now.getTime() - op.createdAt.getTime()) / 1000) };
    stats.length++;
    byKey.set(op.queueKey!, stats);
  }
  return [...byKey.values()];
}

/**
 * Whether `host` could ever hold `request`: in its region, with enough GPUs
 * of its model, and large enough — were the host active and empty.
 */
export function couldEverHold(request: PlacementRequest, host: HostShape): boolean {
  if (request.region && host.region !== request.region) return false;
  if (request.gpuProfile) {
    const profile = request.gpuProfile;
    const serves = Object.entries(host.sharedGpus ?? {}).some(([model, modes]) => {
      if (request.gpuModel && model !== request.gpuModel) return false;
      const found = findGpuProfile(model, profile);
      return found !== null && (modes[found.kind] ?? 0) > 0;
    });
    return serves && host.cpuCores >= request.cpuCores && host.memoryMib >= request.memoryMib && host.diskGib >= request.diskGib;
  }
  const gpus = request.gpuModel ? (host.gpus[request.gpuModel] ?? 0) : Math.max(0, ...Object.values(host.gpus));
  return gpus >= request.gpuCount && host.cpuCores >= request.cpuCores && host.memoryMib >= request.memoryMib && host.diskGib >= request.diskGib;
}

/**
 * The backfill rule. Capacity goes to waiting requests in arrival order; a
 * later request (queued or new) may be placed on `host` ahead of the waiting
 * ones only if none of them could ever use that host: then taking room there
 * cannot delay any of them. Anything placed on a host a waiting request could
 * use would become one more occupant it has to wait for.
 */
export function mayPassWaiting(host: HostShape, waiting: readonly PlacementRequest[]): boolean {
  return waiting.every((request) => !couldEverHold(request, host));
}

/** The hosts a request placed now must not take: those some waiting request could use (by mayPassWaiting). */
export function heldForWaiting(hosts: readonly HostShape[], waiting: readonly PlacementRequest[]): Set<string> {
  return new Set(hosts.filter((host) => !mayPassWaiting(host, waiting)).map((host) => host.id));
}
