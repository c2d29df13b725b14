import type { HostShape } from '../fleet/feasibility';
import { couldEverHold, mayPassWaiting, parseQueueKey, queueKeyOf } from './capacity-queue';

const host = (overrides: Partial<HostShape> = {}): HostShape => ({
  id: 'h',
  name: 'h',
  region: 'us-east-1',
  cpuCores: 64,
  memoryMib: 524_288,
  diskGib: 4000,
  gpus: { 'h100-80gb': 8 },
  ...overrides,
});
const request = (overrides = {}) => ({ cpuCores: 8, memoryMib: 32_768, diskGib: 100, gpuCount: 8, gpuModel: 'h100-80gb', region: null, ...overrides });

describe('capacity queue rules', () => {
  it('keys a queue by GPU model and region, * for any, and reads the key back', () => {
    expect(queueKeyOf({ gpuModel: 'h100-80gb', region: null })).toBe('h100-80gb@*');
    expect(parseQueueKey('*@us-west-2')).toEqual({ gpuModel: null, region: 'us-west-2' });
  });

  it('a host could hold a fractional request only with a GPU (of its model) in the profile\'s sharing mode', () => {
    const mig = host({ gpus: { 'h200-141gb': 2 }, sharedGpus: { 'h200-141gb': { mig: 2 } } });
    const slice = (overrides = {}) => request({ gpuCount: 0, gpuProfile: '3g.71gb', gpuModel: 'h200-141gb', ...overrides });
    expect(couldEverHold(slice(), mig)).toBe(true);
    expect(couldEverHold(slice({ gpuModel: null }), mig)).toBe(true);
    expect(couldEverHold(slice({ gpuProfile: '1/4' }), mig)).toBe(false); // no GPU in vgpu mode
    expect(couldEverHold(slice(), host({ gpus: { 'h200-141gb': 2 } }))).toBe(false); // passthrough only
    expect(couldEverHold(slice({ gpuProfile: '1/4', gpuModel: null }), host({ sharedGpus: { 'h100-80gb': { vgpu: 1 } } }))).toBe(true);
    expect(couldEverHold(slice({ memoryMib: 1_000_000 }), mig)).toBe(false);
  });

  it('a host could hold a request only in its region, with enough GPUs of its model, and large enough', () => {
    expect(couldEverHold(request(), host())).toBe(true);
    expect(couldEverHold(request({ region: 'us-west-2' }), host())).toBe(false);
    expect(couldEverHold(request({ gpuModel: 'a100-80gb' }), host())).toBe(false);
    expect(couldEverHold(request(), host({ gpus: { 'h100-80gb': 4 } }))).toBe(false);
    expect(couldEverHold(request({ gpuCount: 0, gpuModel: null }), host({ gpus: {} }))).toBe(true);
    expect(couldEverHold(request({ memoryMib: 1_000_000 }), host())).toBe(false);
  });

  it('lets a later request pass the waiting ones only onto hosts none of them could use', () => {
    const waiting = [request()];
    // A one-GPU request on the 8-GPU host the head waits for would delay it.
    expect(mayPassWaiting(host(), waiting)).toBe(false);
    // On a 4-GPU host the head could never use, it cannot.
    expect(mayPassWaiting(host({ gpus: { 'h100-80gb': 4 } }), waiting)).toBe(true);
    expect(mayPassWaiting(host({ region: 'us-west-2' }), [request({ region: 'us-east-1' })])).toBe(true);
    expect(mayPassWaiting(host(), [])).toBe(true);
  });
});
