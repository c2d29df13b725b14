import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import { GpuEntity } from '../fleet/gpu.entity';
import { gpuDevicesOf, mdevTypeOf } from './vm-gpu-devices';
import { VmEntity } from './vm.entity';

const gpu = (uuid: string, pciAddress: string) => Object.assign(new GpuEntity(), { id: `id-${uuid}`, uuid, pciAddress, model: 'h200-141gb' });

describe('the GPU devices a VM asks the hypervisor for', () => {
  it('names the mediated-device type after the profile, in the characters a type name allows', () => {
    expect(mdevTypeOf('3g.71gb')).toBe('nvidia-mig-3g.71gb');
    expect(mdevTypeOf('1g.18gb+me')).toBe('nvidia-mig-1g.18gb-me');
    expect(mdevTypeOf('1/4')).toBe('nvidia-vgpu-1-4');
    expect(mdevTypeOf('1')).toBe('nvidia-vgpu-1');
  });

  it('passes whole GPUs it holds through, and a fractional VM one mediated device on its GPU, named by the first slot it holds', () => {
    const whole = Object.assign(new VmEntity(), {
      gpuProfile: null,
      allocations: [
        Object.assign(new GpuAllocationEntity(), { gpu: gpu('GPU-a', '0000:18:00.0'), releasedAt: null }),
        Object.assign(new GpuAllocationEntity(), { gpu: gpu('GPU-b', '0000:19:00.0'), releasedAt: new Date() }), // given back by a resize
      ],
    });
    expect(gpuDevicesOf(whole)).toEqual([{ uuid: 'GPU-a', pciAddress: '0000:18:00.0' }]);

    const h200 = gpu('GPU-c', '0000:1a:00.0');
    const claims = [7, 4, 6, 5].map((slot) => Object.assign(new GpuSlotClaimEntity(), { gpuId: h200.id, gpu: h200, slot, releasedAt: null }));
    const slice = Object.assign(new VmEntity(), { gpuProfile: '3g.71gb', allocations: [], slotClaims: claims });
    expect(gpuDevicesOf(slice)).toEqual([{ uuid: 'GPU-c/4', pciAddress: '0000:1a:00.0', mdevType: 'nvidia-mig-3g.71gb' }]);
    // A VM that holds nothing now (shelved) asks for nothing.
    const shelved = Object.assign(new VmEntity(), { gpuProfile: '3g.71gb', allocations: [], slotClaims: claims.map((c) => Object.assign(new GpuSlotClaimEntity(), { ...c, releasedAt: new Date() })) });
    expect(gpuDevicesOf(shelved)).toEqual([]);
  });
});
