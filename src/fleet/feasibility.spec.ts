import { HostShape, infeasibility } from './feasibility';

const request = (overrides = {}) => ({ cpuCores: 8, memoryMib: 32_768, diskGib: 100, gpuCount: 0, gpuModel: null, region: null, ...overrides });
const FLEET: HostShape[] = [
  { id: 'a', name: 'h100-01', region: 'us-east-1', cpuCores: 224, memoryMib: 2_097_152, diskGib: 30_720, gpus: { 'h100-80gb': 8 } },
  { id: 'b', name: 'l4-01', region: 'us-west-2', cpuCores: 32, memoryMib: 131_072, diskGib: 2_000, gpus: { 'l4-24gb': 2 } },
  { id: 'c', name: 'cpu-01', region: 'us-west-2', cpuCores: 64, memoryMib: 262_144, diskGib: 4_000, gpus: {} },
];

describe('infeasibility', () => {
  it('accepts what some host could hold, busy or not', () => {
    expect(infeasibility(request(), FLEET)).toBeNull();
    expect(infeasibility(request({ gpuCount: 8, gpuModel: 'h100-80gb' }), FLEET)).toBeNull();
    expect(infeasibility(request({ gpuCount: 2, region: 'us-west-2' }), FLEET)).toBeNull();
  });

  it('names an unknown region and lists the regions', () => {
    expect(infeasibility(request({ region: 'mars-1' }), FLEET)).toEqual({
      field: 'region',
      reason: 'unknown region mars-1',
      available: { regions: ['us-east-1', 'us-west-2'] },
    });
  });

  it('names an unknown GPU model and lists the models (in the region asked for)', () => {
    expect(infeasibility(request({ gpuCount: 1, gpuModel: 'b200-192gb' }), FLEET)).toMatchObject({ field: 'gpu_model', available: { gpu_models: ['h100-80gb', 'l4-24gb'] } });
    expect(infeasibility(request({ gpuCount: 1, gpuModel: 'h100-80gb', region: 'us-west-2' }), FLEET)).toMatchObject({
      field: 'gpu_model',
      reason: 'no host in us-west-2 has GPU model h100-80gb',
      available: { gpu_models: ['l4-24gb'] },
    });
  });

  it('a profile needs a GPU in its sharing mode: none is unsatisfiable naming gpu_profile, with the shared GPUs there are', () => {
    const shared: HostShape[] = [...FLEET, { id: 'd', name: 'h200-mig-01', region: 'us-east-1', cpuCores: 192, memoryMib: 2_097_152, diskGib: 30_720, gpus: { 'h200-141gb': 2 }, sharedGpus: { 'h200-141gb': { mig: 2 } } }];
    expect(infeasibility(request({ gpuProfile: '3g.71gb', gpuModel: 'h200-141gb' }), shared)).toBeNull();
    expect(infeasibility(request({ gpuProfile: '3g.71gb' }), shared)).toBeNull();
    expect(infeasibility(request({ gpuProfile: '1/4' }), shared)).toEqual({
      field: 'gpu_profile',
      reason: 'no host has a GPU in the sharing mode that 1/4 needs (an admin sets it with PATCH /hosts/{id}/gpus/{gpu_id})',
      available: { shared_gpus: ['h200-141gb mig'] },
    });
    expect(infeasibility(request({ gpuProfile: '3g.71gb', region: 'us-west-2' }), shared)).toMatchObject({ field: 'gpu_profile', available: { shared_gpus: [] } });
    expect(infeasibility(request({ gpuProfile: '3g.71gb', cpuCores: 200 }), shared)).toMatchObject({ field: 'cpu_cores', available: { largest_host: { cpu_cores: 192 } } });
    // A model that is not in the fleet at all is named first, as for whole GPUs.
    expect(infeasibility(request({ gpuProfile: '1/4', gpuModel: 'b200-192gb' }), shared)).toMatchObject({ field: 'gpu_model' });
  });

  it('names a GPU count no host has, with the most there is', () => {
    expect(infeasibility(request({ gpuCount: 4, gpuModel: 'l4-24gb' }), FLEET)).toMatchObject({ field: 'gpu_count', available: { max_gpu_count: 2 } });
  });

  it('names a size larger than the largest host, with the largest sizes', () => {
    expect(infeasibility(request({ cpuCores: 256, memoryMib: 4_194_304 }), FLEET)).toMatchObject({
      field: 'cpu_cores',
      available: { largest_host: { cpu_cores: 224, memory: 2_097_152, disk_size: 30_720 } },
    });
    // Large enough alone on one host, but not on a host with the GPUs asked for.
    expect(infeasibility(request({ cpuCores: 64, gpuCount: 2, gpuModel: 'l4-24gb' }), FLEET)).toMatchObject({ field: 'cpu_cores' });
  });

  it('says so when there are no hosts at all', () => {
    expect(infeasibility(request(), [])).toMatchObject({ field: 'fleet', reason: 'no hosts are registered' });
  });
});
