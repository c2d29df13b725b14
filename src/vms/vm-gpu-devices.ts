import type { GpuDevice } from '@vmplane/sdk';
import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import type { PlacementPlan } from '../fleet/placement.service';
import type { VmEntity } from './vm.entity';

/** The slot rows a plan's fractional claim writes, as the VM then holds them (for the driver call that follows). */
export function slotClaimsOf(vmId: string, plan: PlacementPlan): GpuSlotClaimEntity[] {
  const claim = plan.slotClaim;
  if (!claim) return [];
  return claim.slots.map((slot) => Object.assign(new GpuSlotClaimEntity(), { gpuId: claim.gpu.id, gpu: claim.gpu, vmId, slot, profile: claim.profile, releasedAt: null }));
}

/**
 * The mediated-device type a profile asks the driver for. NVIDIA's real type ids (`nvidia-1061`) are per
 * driver release and GPU and are read from the host's mdev_supported_types; until hosts report them, the
 * name says the profile (`nvidia-mig-3g.71gb`, `nvidia-vgpu-1-4`), which the simulator accepts as is.
 */
export function mdevTypeOf(profile: string): string {
  return profile.includes('/') || /^\d+$/.test(profile) ? `nvidia-vgpu-${profile.replace('/', '-')}` : `nvidia-mig-${profile.replace(/\+/g, '-')}`;
}

/**
 * The devices the hypervisor attaches: each whole GPU the VM holds (passthrough), or for a fractional VM one
 * mediated device of its profile on the GPU whose slots it holds. The device's id names the GPU and the
 * claim's first slot, which no other live VM can hold (the slot rows' unique index), so the simulator's
 * one-holder-per-device check sees two VMs sharing a GPU as two devices.
 */
export function gpuDevicesOf(vm: VmEntity): GpuDevice[] {
  const whole = (vm.allocations ?? []).filter((a) => !a.releasedAt).map((a) => ({ uuid: a.gpu!.uuid, pciAddress: a.gpu!.pciAddress }));
  const live = (vm.slotClaims ?? []).filter((c) => !c.releasedAt && c.gpu);
  if (live.length === 0 || !vm.gpuProfile) return whole;
  const first = live.reduce((a, b) => (b.slot < a.slot ? b : a));
  return [...whole, { uuid: `${first.gpu!.uuid}/${first.slot}`, pciAddress: first.gpu!.pciAddress, mdevType: mdevTypeOf(vm.gpuProfile) }];
}
