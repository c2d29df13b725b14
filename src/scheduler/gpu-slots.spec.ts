import fc from 'fast-check';
import { findGpuProfile, GpuProfile, GpuSharingMode, MigProfile, migProfilesFor, VGPU_PROFILES } from '../fleet/domain/gpu-profiles';
import {
  canFit,
  chooseSlots,
  claimProblem,
  claimSlots,
  freeMilliGpu,
  largestWholeGpuCount,
  maskOfSlots,
  migPlacementMask,
  profileCapacity,
  profileCapacityOn,
  releaseSlots,
} from './gpu-slots';
import { GpuSlotClaim, SchedulerGpu } from './scheduler.types';
import { makeGpus, makeHost } from './testing/host.factory';

function sharedGpu(id: string, model: string, sharingMode: GpuSharingMode): SchedulerGpu {
  return { id, index: 0, model, free: true, sharingMode, usedSlots: 0, vgpuProfile: null };
}

function claim(gpu: SchedulerGpu, profileName: string): GpuSlotClaim | null {
  const profile: GpuProfile = findGpuProfile(gpu.model, profileName) as GpuProfile;
  const slots: number[] | null = chooseSlots(gpu, profile);
  if (slots === null) return null;
  const made: GpuSlotClaim = { gpuId: gpu.id, profile: profileName, slots };
  claimSlots(gpu, made);
  return made;
}

/** The most instances of `profile` that fit next to `used`, by trying every subset of its placements. */
function bruteForceCapacity(profile: MigProfile, used: number): number {
  const masks: number[] = profile.startSlots.map((start: number) => migPlacementMask(profile, start));
  let best: number = 0;
  for (let subset: number = 0; subset < 1 << masks.length; subset++) {
    let taken: number = used;
    let count: number = 0;
    let ok: boolean = true;
    masks.forEach((mask: number, i: number) => {
      if ((subset & (1 << i)) === 0 || !ok) return;
      if ((taken & mask) !== 0) ok = false;
      taken |= mask;
      count++;
    });
    if (ok) best = Math.max(best, count);
  }
  return best;
}

describe('MIG slots', () => {
  it('place a 1g at slot 6 of an empty H200, where it blocks only the 7g and one 3g', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 'h200-141gb', 'mig');
    expect(claim(gpu, '1g.18gb')?.slots).toEqual([6]);
    expect(profileCapacityOn(gpu, findGpuProfile('h200-141gb', '4g.71gb') as GpuProfile)).toBe(1);
    expect(profileCapacityOn(gpu, findGpuProfile('h200-141gb', '3g.71gb') as GpuProfile)).toBe(1);
    expect(profileCapacityOn(gpu, findGpuProfile('h200-141gb', '7g.141gb') as GpuProfile)).toBe(0);
  });

  it('do not make a 7g out of seven free 1g slots', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 'h100-80gb', 'mig');
    claim(gpu, '1g.10gb');
    expect(profileCapacityOn(gpu, findGpuProfile('h100-80gb', '1g.10gb') as GpuProfile)).toBe(6);
    expect(profileCapacityOn(gpu, findGpuProfile('h100-80gb', '7g.80gb') as GpuProfile)).toBe(0);
  });

  it('take the media extensions slot for a +me instance, so a GPU has one', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 'h200-141gb', 'mig');
    expect(claim(gpu, '1g.18gb+me')?.slots).toContain(8);
    expect(claim(gpu, '1g.18gb+me')).toBeNull();
    expect(claim(gpu, '1g.18gb')).not.toBeNull();
  });

  it.each<[string, GpuSlotClaim, RegExp]>([
    ['a start NVML does not allow', { gpuId: 'g', profile: '2g.35gb', slots: [1, 2] }, /not a valid 2g.35gb placement/],
    ['part of a placement', { gpuId: 'g', profile: '3g.71gb', slots: [0, 1, 2] }, /not a valid 3g.71gb placement/],
    ['unsorted slots', { gpuId: 'g', profile: '2g.35gb', slots: [1, 0] }, /ascending/],
    ['a profile of another model', { gpuId: 'g', profile: '3g.40gb', slots: [0, 1, 2, 3] }, /has no profile "3g.40gb"/],
    ['a vGPU size', { gpuId: 'g', profile: '1/2', slots: [0] }, /has no profile "1\/2"/],
  ])('refuse a claim with %s', (_label: string, bad: GpuSlotClaim, message: RegExp) => {
    const gpu: SchedulerGpu = sharedGpu('g', 'h200-141gb', 'mig');
    expect(claimProblem(gpu, bad)).toMatch(message);
    expect(() => claimSlots(gpu, bad)).toThrow(message);
    expect(gpu.usedSlots).toBe(0);
  });

  it('refuse overlapping claims and releases of slots not held', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 'h200-141gb', 'mig');
    claimSlots(gpu, { gpuId: 'g', profile: '4g.71gb', slots: [0, 1, 2, 3] });
    expect(claimProblem(gpu, { gpuId: 'g', profile: '2g.35gb', slots: [2, 3] })).toMatch(/already has slot/);
    expect(() => releaseSlots(gpu, { gpuId: 'g', profile: '2g.35gb', slots: [4, 5] })).toThrow(/does not hold/);
  });
});

describe('vGPU slots', () => {
  it('hold one size per GPU until the last vGPU of that size goes', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 't4-16gb', 'vgpu');
    const first: GpuSlotClaim = claim(gpu, '1/4') as GpuSlotClaim;
    expect([first.slots, gpu.vgpuProfile, gpu.free]).toEqual([[0], '1/4', false]);
    expect(canFit(gpu, findGpuProfile('t4-16gb', '1/2') as GpuProfile)).toBe(false);
    expect(claimProblem(gpu, { gpuId: 'g', profile: '1/2', slots: [1] })).toMatch(/one vGPU size at a time/);
    const second: GpuSlotClaim = claim(gpu, '1/4') as GpuSlotClaim;
    releaseSlots(gpu, first);
    expect(gpu.vgpuProfile).toBe('1/4');
    releaseSlots(gpu, second);
    expect([gpu.vgpuProfile, gpu.free, gpu.usedSlots]).toEqual([null, true, 0]);
    expect(claim(gpu, '1/2')?.slots).toEqual([0]);
  });

  it('fit perGpu vGPUs of a size, and none on a GPU in another mode', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 't4-16gb', 'vgpu');
    for (let i: number = 0; i < 8; i++) expect(claim(gpu, '1/8')).not.toBeNull();
    expect(claim(gpu, '1/8')).toBeNull();
    expect(canFit(sharedGpu('m', 'h200-141gb', 'mig'), VGPU_PROFILES[0])).toBe(false);
    expect(canFit({ model: 't4-16gb', free: true }, VGPU_PROFILES[0])).toBe(false);
  });

  it('count free capacity in milli-GPUs for ranking', () => {
    const gpu: SchedulerGpu = sharedGpu('g', 't4-16gb', 'vgpu');
    expect(freeMilliGpu(gpu)).toBe(1000);
    claim(gpu, '1/4');
    expect(freeMilliGpu(gpu)).toBe(750);
    expect(freeMilliGpu({ model: 't4-16gb', free: false })).toBe(0);
  });
});

describe('capacity', () => {
  it('counts a profile across GPUs of the right model and mode only', () => {
    const gpus: SchedulerGpu[] = [
      sharedGpu('a', 'h200-141gb', 'mig'),
      sharedGpu('b', 'h200-141gb', 'vgpu'),
      sharedGpu('c', 'h100-80gb', 'mig'),
      { id: 'd', index: 3, model: 'h200-141gb', free: true },
    ];
    expect(profileCapacity(gpus, '3g.71gb')).toBe(2);
    expect(profileCapacity(gpus, '3g.40gb')).toBe(2);
    expect(profileCapacity(gpus, '1/2')).toBe(2);
    expect(profileCapacity(gpus, '1/2', 'h100-80gb')).toBe(0);
  });

  it('gives the largest whole-GPU count one VM can get on a host: one model, passthrough, free', () => {
    const host = makeHost('h', {
      gpus: [...makeGpus('h', 'a100-80gb', 3, [0]), ...makeGpus('h', 'l4-24gb', 2, [], 3), { ...sharedGpu('h-gpu5', 'a100-80gb', 'mig'), index: 5 }],
    });
    expect(largestWholeGpuCount(host)).toBe(2);
    expect(largestWholeGpuCount(host, 'a100-80gb')).toBe(2);
    expect(largestWholeGpuCount(host, 'h100-80gb')).toBe(0);
  });
});

type Step = { kind: 'claim'; gpu: number; profile: number } | { kind: 'release'; pick: number };

const MODELS: { model: string; mode: GpuSharingMode }[] = [
  { model: 'h200-141gb', mode: 'mig' },
  { model: 'a100-40gb', mode: 'mig' },
  { model: 'h100-80gb', mode: 'mig' },
  { model: 't4-16gb', mode: 'vgpu' },
  { model: 'h200-141gb', mode: 'vgpu' },
];

function profilesOf(gpu: SchedulerGpu): GpuProfile[] {
  return gpu.sharingMode === 'mig' ? [...migProfilesFor(gpu.model)] : [...VGPU_PROFILES];
}

describe('the slot ledger under any sequence of fractional claims and releases', () => {
  it('never overlaps claims, keeps MIG claims on valid placements, keeps one vGPU size per GPU, and reports exactly the free capacity', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: MODELS.length - 1 }), { minLength: 1, maxLength: 4 }),
        fc.array(
          fc.oneof(
            { weight: 3, arbitrary: fc.record({ kind: fc.constant('claim' as const), gpu: fc.nat(), profile: fc.nat() }) },
            { weight: 1, arbitrary: fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }) },
          ),
          { maxLength: 60 },
        ),
        (kinds: number[], steps: Step[]) => {
          const gpus: SchedulerGpu[] = kinds.map((k: number, i: number) => ({ ...sharedGpu(`g${i}`, MODELS[k].model, MODELS[k].mode), index: i }));
          const live: { gpu: SchedulerGpu; claim: GpuSlotClaim }[] = [];
          for (const step of steps) {
            if (step.kind === 'release') {
              if (live.length === 0) continue;
              const [gone] = live.splice(step.pick % live.length, 1);
              releaseSlots(gone.gpu, gone.claim);
            } else {
              const gpu: SchedulerGpu = gpus[step.gpu % gpus.length];
              const profiles: GpuProfile[] = profilesOf(gpu);
              const profile: GpuProfile = profiles[step.profile % profiles.length];
              const slots: number[] | null = chooseSlots(gpu, profile);
              expect(slots !== null).toBe(canFit(gpu, profile));
              if (slots === null) continue;
              const made: GpuSlotClaim = { gpuId: gpu.id, profile: profile.name, slots };
              expect(claimProblem(gpu, made)).toBeNull();
              claimSlots(gpu, made);
              live.push({ gpu, claim: made });
            }
            for (const gpu of gpus) {
              const mine: GpuSlotClaim[] = live.filter((c) => c.gpu === gpu).map((c) => c.claim);
              // No two claims share a slot, and the GPU's mask is exactly their union.
              const masks: number[] = mine.map((c: GpuSlotClaim) => maskOfSlots(c.slots));
              masks.forEach((a: number, i: number) => masks.slice(i + 1).forEach((b: number) => expect(a & b).toBe(0)));
              expect(gpu.usedSlots).toBe(masks.reduce((union: number, m: number) => union | m, 0));
              expect(gpu.free).toBe(mine.length === 0);
              for (const c of mine) {
                const profile: GpuProfile = findGpuProfile(gpu.model, c.profile) as GpuProfile;
                if (profile.kind === 'mig') {
                  expect(profile.startSlots.some((start: number) => migPlacementMask(profile, start) === maskOfSlots(c.slots))).toBe(true);
                } else {
                  expect(c.profile).toBe(gpu.vgpuProfile);
                  expect(c.slots[0]).toBeLessThan(profile.perGpu);
                }
              }
              if (gpu.sharingMode === 'vgpu' && mine.length === 0) expect(gpu.vgpuProfile).toBeNull();
              // The reported capacity is what placing greedily until refusal really places, and the true maximum.
              for (const profile of profilesOf(gpu)) {
                const reported: number = profileCapacityOn(gpu, profile);
                const copy: SchedulerGpu = { ...gpu };
                let placed: number = 0;
                for (let slots = chooseSlots(copy, profile); slots !== null; slots = chooseSlots(copy, profile)) {
                  claimSlots(copy, { gpuId: copy.id, profile: profile.name, slots });
                  placed++;
                }
                expect([profile.name, reported]).toEqual([profile.name, placed]);
                if (profile.kind === 'mig') {
                  expect(reported).toBe(bruteForceCapacity(profile, gpu.usedSlots ?? 0));
                }
              }
            }
          }
        },
      ),
      { seed: 20261130, numRuns: 300 },
    );
  });
});
