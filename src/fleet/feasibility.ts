import type { PlacementRequest } from '../scheduler/scheduler.types';
import { findGpuProfile, type GpuSharingMode } from './domain/gpu-profiles';

/** A host as registered, whatever its state or load: what it could hold if it were active and empty. */
export interface HostShape {
  id: string;
  name: string;
  region: string;
  cpuCores: number;
  memoryMib: number;
  diskGib: number;
  /** GPUs per model. */
  gpus: Record<string, number>;
  /** Of those, the GPUs per model in a shared mode (vgpu, mig); absent or empty: all passthrough. */
  sharedGpus?: Record<string, Partial<Record<GpuSharingMode, number>>>;
}

export interface Infeasibility {
  /** The request field that cannot be met. */
  field: 'region' | 'gpu_model' | 'gpu_count' | 'gpu_profile' | 'cpu_cores' | 'memory' | 'disk_size' | 'fleet';
  reason: string;
  /** What exists instead, for the client to choose from. */
  available: Record<string, unknown>;
}

/** The GPU models the hosts have, sorted. */
export function gpuModelsOf(fleet: readonly HostShape[]): string[] {
  return [...new Set(fleet.flatMap((h) => Object.keys(h.gpus)))].sort();
}

/**
 * Why no host of the fleet could ever hold the request — not even active and
 * empty — or null when one could (then a refusal is only "not now"). Checked
 * in the order a user fixes a request: the region, the GPU model, the GPU
 * count, then the size.
 */
export function infeasibility(request: PlacementRequest, fleet: readonly HostShape[]): Infeasibility | null {
  if (fleet.length === 0) return { field: 'fleet', reason: 'no hosts are registered', available: {} };
  const regions = [...new Set(fleet.map((h) => h.region))].sort();
  if (request.region && !regions.includes(request.region)) {
    return { field: 'region', reason: `unknown region ${request.region}`, available: { regions } };
  }
  const inRegion = fleet.filter((h) => !request.region || h.region === request.region);
  const where = request.region ? ` in ${request.region}` : '';
  if (request.gpuModel) {
    const models = gpuModelsOf(inRegion);
    if (!models.includes(request.gpuModel)) {
      return { field: 'gpu_model', reason: `no host${where} has GPU model ${request.gpuModel}`, available: { gpu_models: models } };
    }
  }
  if (request.gpuProfile) return profileInfeasibility(request, request.gpuProfile, inRegion, where);
  const gpusOn = (h: HostShape) => (request.gpuModel ? (h.gpus[request.gpuModel] ?? 0) : Math.max(0, ...Object.values(h.gpus)));
  const withGpus = inRegion.filter((h) => gpusOn(h) >= request.gpuCount);
  if (withGpus.length === 0) {
    const most = Math.max(0, ...inRegion.map(gpusOn));
    const what = request.gpuModel ? `${request.gpuModel} GPUs` : 'GPUs of one model';
    return { field: 'gpu_count', reason: `no host${where} has ${request.gpuCount} ${what}; the most on one host is ${most}`, available: { max_gpu_count: most } };
  }
  const fits = withGpus.some((h) => h.cpuCores >= request.cpuCores && h.memoryMib >= request.memoryMib && h.diskGib >= request.diskGib);
  if (fits) return null;
  const largest = {
    cpu_cores: Math.max(...withGpus.map((h) => h.cpuCores)),
    memory: Math.max(...withGpus.map((h) => h.memoryMib)),
    disk_size: Math.max(...withGpus.map((h) => h.diskGib)),
  };
  const field = request.cpuCores > largest.cpu_cores ? 'cpu_cores' : request.memoryMib > largest.memory ? 'memory' : request.diskGib > largest.disk_size ? 'disk_size' : 'cpu_cores';
  const gpus = request.gpuCount > 0 ? ` with ${request.gpuCount} GPU(s)` : '';
  return {
    field,
    reason: `larger than any host${where}${gpus}: the largest has ${largest.cpu_cores} vCPUs, ${largest.memory} MiB and ${largest.disk_size} GiB (not necessarily on the same host)`,
    available: { largest_host: largest },
  };
}

/**
 * A profile request needs a GPU (of the model asked for) in the profile's sharing mode: vgpu for a vGPU size,
 * mig on a model whose MIG table has the profile. Without one the request is unsatisfiable until an admin
 * changes a GPU's mode; the answer lists the profiles the fleet's shared GPUs do offer.
 */
function profileInfeasibility(request: PlacementRequest, profileName: string, inRegion: readonly HostShape[], where: string): Infeasibility | null {
  const serving = inRegion.filter((h) =>
    Object.entries(h.sharedGpus ?? {}).some(([model, modes]) => {
      if (request.gpuModel && model !== request.gpuModel) return false;
      const profile = findGpuProfile(model, profileName);
      return profile !== null && (modes[profile.kind] ?? 0) > 0;
    }),
  );
  if (serving.length === 0) {
    const offered = new Set<string>();
    for (const h of inRegion) {
      for (const [model, modes] of Object.entries(h.sharedGpus ?? {})) {
        if ((modes.vgpu ?? 0) > 0) offered.add(`${model} vgpu`);
        if ((modes.mig ?? 0) > 0) offered.add(`${model} mig`);
      }
    }
    const model = request.gpuModel ? ` ${request.gpuModel}` : '';
    return {
      field: 'gpu_profile',
      reason: `no host${where} has a${model} GPU in the sharing mode that ${profileName} needs (an admin sets it with PATCH /hosts/{id}/gpus/{gpu_id})`,
      available: { shared_gpus: [...offered].sort() },
    };
  }
  const fits = serving.some((h) => h.cpuCores >= request.cpuCores && h.memoryMib >= request.memoryMib && h.diskGib >= request.diskGib);
  if (fits) return null;
  const largest = {
    cpu_cores: Math.max(...serving.map((h) => h.cpuCores)),
    memory: Math.max(...serving.map((h) => h.memoryMib)),
    disk_size: Math.max(...serving.map((h) => h.diskGib)),
  };
  const field = request.cpuCores > largest.cpu_cores ? 'cpu_cores' : request.memoryMib > largest.memory ? 'memory' : 'disk_size';
  return {
    field,
    reason: `larger than any host${where} with a GPU for ${profileName}: the largest has ${largest.cpu_cores} vCPUs, ${largest.memory} MiB and ${largest.disk_size} GiB`,
    available: { largest_host: largest },
  };
}
