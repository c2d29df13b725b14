import type { AuthUser } from '../../src/auth/auth-user';
import { DomainError } from '../../src/common/domain-errors';
import { statusForCode } from '../../src/common/problem-details';
import { CapacityService } from '../../src/fleet/capacity.service';
import { GpuSharingModeDto, HostResponseDto, RegisterHostDto, UpdateGpuDto } from '../../src/fleet/dto/host.dto';
import { FleetService } from '../../src/fleet/fleet.service';
import { SetQuotaDto } from '../../src/users/dto/user.dto';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import type { VmResponseDto } from '../../src/vms/dto/vm-response.dto';
import { CapacityQueueService } from '../../src/vms/capacity-queue.service';
import { VmActionsService } from '../../src/vms/vm-actions.service';
import { VmOutcome } from '../../src/vms/vm-outcome';
import { UsageEventsRepository } from '../../src/vms/usage-events.repository';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { DB_KINDS, reportSkippedPostgres, sleep } from './support/database';
import { finishedVm, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };
const ASYNC: RequestOptions = { respondAsync: true, waitSeconds: null, idempotencyKey: null, requestId: null };
const H200 = 'h200-141gb';
const L4 = 'l4-24gb';

function host(name: string, region: string, model: string, gpus: number): RegisterHostDto {
  return Object.assign(new RegisterHostDto(), {
    name,
    region,
    cpu_cores: 192,
    memory_mib: 2_097_152,
    disk_gib: 30_000,
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      product_name: model === H200 ? 'NVIDIA H200' : 'NVIDIA L4',
      memory_mib: model === H200 ? 143_771 : 23_034,
      pci_address: `00000000:${(0x18 + i).toString(16).padStart(2, '0')}:00.0`,
      uuid: `GPU-${name}-${i}`,
      model,
    })),
  });
}

function spec(overrides: Partial<CreateVmDto> = {}): CreateVmDto {
  return Object.assign(new CreateVmDto(), { name: 'frac', cpu_cores: 1, memory: 1024, disk_size: 10, ...overrides });
}

/** What the HTTP layer would answer: the status, and the problem's code and extensions for an error. */
async function answerOf(work: Promise<VmOutcome>): Promise<{ status: number; code?: string; error?: DomainError; vmId?: string }> {
  try {
    const outcome = await work;
    return outcome.kind === 'done' ? { status: outcome.status, vmId: outcome.vm.id } : { status: 202, vmId: outcome.vm.id };
  } catch (error) {
    if (error instanceof DomainError) return { status: statusForCode(error.code), code: error.code, error };
    throw error;
  }
}

describe.each(DB_KINDS)('fractional GPUs (vGPU and MIG) through the services on %s', (kind) => {
  let app: MediumApp;
  let vms: VmsService;
  let actions: VmActionsService;
  let fleet: FleetService;
  let users: UsersService;
  let capacity: CapacityService;
  let seq = 0;

  beforeAll(async () => {
    app = await newMediumApp(kind, { QUOTA_VMS: '1000', QUOTA_GPUS: '100', STOP_TIMEOUT_SECONDS: '1' });
    vms = app.get(VmsService);
    actions = app.get(VmActionsService);
    fleet = app.get(FleetService);
    users = app.get(UsersService);
    capacity = app.get(CapacityService);
  }, 60_000);
  afterAll(() => app?.close());

  const newUser = () => newMember(users, `frac${++seq}-${kind}`);
  const mode = (sharing_mode: GpuSharingModeDto) => Object.assign(new UpdateGpuDto(), { sharing_mode });
  /** Registers a host and puts every GPU of it in `sharing`. */
  async function sharedHost(name: string, region: string, gpus: number, sharing: GpuSharingModeDto, model = H200): Promise<HostResponseDto> {
    const registered = await fleet.register(host(`${name}-${kind}`, region, model, gpus));
    for (const gpu of registered.gpus) await fleet.updateGpu(registered.id, gpu.id, mode(sharing));
    return fleet.get(registered.id);
  }
  /** (gpu id, slot) pairs the VMs hold, one string each. */
  const heldSlots = (held: VmResponseDto[]) => held.flatMap((vm) => vm.gpus.flatMap((g) => (g.slots ?? []).map((slot) => `${g.id}:${slot}`)));
  async function untilCreated(user: AuthUser, ids: string[]): Promise<VmResponseDto[]> {
    for (let i = 0; i < 200; i++) {
      const now = await Promise.all(ids.map((id) => vms.get(user, id)));
      if (now.every((vm) => vm.status !== 'provisioning')) return now;
      await sleep(50);
    }
    throw new Error('VMs still provisioning after 10 s');
  }

  it('64 concurrent 1g.18gb creates on two H200s in MIG mode place exactly 14, on 14 distinct (GPU, slot) pairs; the rest are refused with alternatives', async () => {
    const region = `r-mig64-${kind}`;
    const mig = await sharedHost('mig64', region, 2, GpuSharingModeDto.Mig);
    await fleet.register(host(`mig64-l4-${kind}`, region, L4, 2)); // something else that fits, for the alternatives
    const user = await newUser();

    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => answerOf(vms.create(user, spec({ name: `mig-${i}`, gpu_profile: '1g.18gb', gpu_model: H200, region }), ASYNC))));
    const elapsedMs = performance.now() - started;
    process.stdout.write(`[fractional] 64 concurrent 1g.18gb creates on ${kind}: ${elapsedMs.toFixed(0)} ms\n`);

    const placed = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    expect(placed).toHaveLength(14);
    expect(refused).toHaveLength(50);
    for (const answer of refused) {
      expect(answer).toMatchObject({ status: 503, code: 'insufficient_capacity' });
      expect(answer.error!.extensions.alternatives).toEqual(expect.arrayContaining([{ gpu_model: L4, gpu_count: 1, region }]));
    }
    const held = await untilCreated(user, placed.map((a) => a.vmId!));
    expect(held.map((vm) => vm.status)).toEqual(Array(14).fill('created'));
    const pairs = heldSlots(held);
    expect(pairs).toHaveLength(14);
    expect(new Set(pairs).size).toBe(14);
    // Seven 1g instances per GPU: memory slices 0–6 of each H200.
    for (const gpu of mig.gpus) expect(pairs.filter((p) => p.startsWith(`${gpu.id}:`)).map((p) => Number(p.split(':')[1])).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const vm of held) expect(vm).toMatchObject({ gpu_profile: '1g.18gb', gpu_count: 0, gpu_model: H200, gpus: [expect.objectContaining({ model: H200, uuid: expect.stringMatching(/^GPU-mig64-/) })] });
    // The hypervisor got one mediated device per VM, on the claimed GPU and slot.
    const onHypervisor = (await app.hypervisor.listVms()).filter((v) => held.some((vm) => vm.id === v.metadata?.vmId));
    expect(new Set(onHypervisor.flatMap((v) => v.gpus)).size).toBe(14);
    expect((await users.me(user)).usage).toMatchObject({ gpu_milli: 14 * 143, vms: 14 });
    const [h200] = (await capacity.gpuCapacity()).items.filter((c) => c.region === region && c.gpu_model === H200);
    expect(h200.profiles.find((p) => p.profile === '1g.18gb')).toEqual({ profile: '1g.18gb', placeable_now: 0, gpu_milli: 143 });
    expect(h200.allocated).toBe(2);
  }, 60_000);

  it('24 concurrent 1/8 vGPUs on two GPUs in vgpu mode place exactly 16, eight seats per GPU', async () => {
    const region = `r-vgpu24-${kind}`;
    const shared = await sharedHost('vgpu24', region, 2, GpuSharingModeDto.Vgpu);
    const user = await newUser();
    const started = performance.now();
    const answers = await Promise.all(Array.from({ length: 24 }, (_, i) => answerOf(vms.create(user, spec({ name: `v-${i}`, gpu_profile: '1/8', region }), ASYNC))));
    process.stdout.write(`[fractional] 24 concurrent 1/8 vGPU creates on ${kind}: ${(performance.now() - started).toFixed(0)} ms\n`);
    const placed = answers.filter((a) => a.status === 202);
    expect(placed).toHaveLength(16);
    expect(answers.filter((a) => a.code === 'insufficient_capacity')).toHaveLength(8);
    const held = await untilCreated(user, placed.map((a) => a.vmId!));
    const pairs = heldSlots(held);
    expect(new Set(pairs).size).toBe(16);
    for (const gpu of shared.gpus) expect(pairs.filter((p) => p.startsWith(`${gpu.id}:`)).map((p) => Number(p.split(':')[1])).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect((await fleet.get(shared.id)).gpus.map((g) => [g.vgpu_profile, g.fractional_vms])).toEqual([
      ['1/8', 8],
      ['1/8', 8],
    ]);
    expect((await users.me(user)).usage.gpu_milli).toBe(16 * 125);
  }, 60_000);

  it('mixed 1/4 and 1/2 vGPUs never share a GPU: one size per GPU, whatever order the requests race in', async () => {
    const region = `r-mixed-${kind}`;
    const shared = await sharedHost('mixed', region, 2, GpuSharingModeDto.Vgpu);
    const user = await newUser();
    const sizes = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? '1/4' : '1/2'));
    const answers = await Promise.all(sizes.map((size, i) => answerOf(vms.create(user, spec({ name: `m-${i}`, gpu_profile: size, region }), ASYNC))));
    const placed = answers.filter((a) => a.status === 202);
    const held = await untilCreated(user, placed.map((a) => a.vmId!));
    const sizesOnGpu = new Map<string, Set<string>>();
    for (const vm of held) for (const g of vm.gpus) sizesOnGpu.set(g.id, new Set([...(sizesOnGpu.get(g.id) ?? []), vm.gpu_profile!]));
    for (const found of sizesOnGpu.values()) expect(found.size).toBe(1);
    // Which size each GPU takes depends on the order the requests win placement (on PostgreSQL, the order they
    // take the model's lock): three halves first fill both GPUs with halves. Whatever the sizes, every seat of
    // them that a request asked for is filled, and the rest are refused for capacity.
    const profiles = (await fleet.get(shared.id)).gpus.map((g) => g.vgpu_profile);
    expect(profiles.every((p) => p === '1/4' || p === '1/2')).toBe(true);
    const seats: Record<string, number> = { '1/4': 4, '1/2': 2 };
    const fillable = ['1/4', '1/2'].reduce((sum, size) => sum + Math.min(profiles.filter((p) => p === size).length * seats[size], sizes.filter((s) => s === size).length), 0);
    expect(placed).toHaveLength(fillable);
    expect(answers.filter((a) => a.status !== 202).map((a) => a.code)).toEqual(Array(12 - fillable).fill('insufficient_capacity'));
  }, 60_000);

  it('delete and shelve give the slots back; unshelve claims again; the last vGPU to go clears the GPU size', async () => {
    const region = `r-release-${kind}`;
    const mig = await sharedHost('release', region, 1, GpuSharingModeDto.Mig);
    const user = await newUser();
    const placeable = async (profile: string) => (await capacity.gpuCapacity()).items.find((c) => c.region === region)!.profiles.find((p) => p.profile === profile)!.placeable_now;
    expect(await placeable('3g.71gb')).toBe(2);
    expect(await placeable('7g.141gb')).toBe(1);

    const a = finishedVm(await vms.create(user, spec({ name: 'a', gpu_profile: '3g.71gb', gpu_model: H200, region }), WAIT));
    const b = finishedVm(await vms.create(user, spec({ name: 'b', gpu_profile: '3g.71gb', gpu_model: H200, region }), WAIT));
    // The two halves of the GPU (a 3g starts at slice 0 or 4), the first at 4 so a 4g still fits at 0 meanwhile.
    expect([a.gpus[0].slots, b.gpus[0].slots]).toEqual([
      [4, 5, 6, 7],
      [0, 1, 2, 3],
    ]);
    expect((await answerOf(vms.create(user, spec({ name: 'c', gpu_profile: '1g.18gb', gpu_model: H200, region }), WAIT))).code).toBe('insufficient_capacity');
    expect(await placeable('7g.141gb')).toBe(0);
    expect((await users.me(user)).usage.gpu_milli).toBe(858);

    finishedVm(await vms.delete(user, a.id, WAIT));
    // Metered in milli-GPUs like the quota, with the profile: a claim when placed, a release when it went.
    const metered = await app.uow.read((tx) => app.get(UsageEventsRepository).listForVm(tx, a.id));
    expect(metered.filter((e) => e.kind === 'gpu_claim' || e.kind === 'gpu_release')).toEqual([
      expect.objectContaining({ kind: 'gpu_claim', gpuCount: 0, gpuModel: H200, gpuProfile: '3g.71gb', gpuMilli: 429 }),
      expect.objectContaining({ kind: 'gpu_release', gpuCount: 0, gpuModel: H200, gpuProfile: '3g.71gb', gpuMilli: 429 }),
    ]);
    expect(await placeable('3g.71gb')).toBe(1);
    expect((await users.me(user)).usage.gpu_milli).toBe(429);
    const deleted = await vms.get(user, a.id);
    expect(deleted.gpus).toEqual([expect.objectContaining({ id: mig.gpus[0].id, slots: [4, 5, 6, 7] })]); // where it ran, kept in the record

    const c = finishedVm(await vms.create(user, spec({ name: 'c', gpu_profile: '1g.18gb', gpu_model: H200, region }), WAIT));
    expect(c.gpus[0].slots).toHaveLength(1);
    expect(c.gpus[0].slots![0]).toBeGreaterThanOrEqual(4); // the freed half

    const shelved = finishedVm(await actions.shelve(user, b.id, WAIT));
    expect(shelved.status).toBe('shelved');
    expect(await placeable('3g.71gb')).toBe(1);
    expect(await placeable('4g.71gb')).toBe(1);
    expect((await users.me(user)).usage.gpu_milli).toBe(143);
    const back = finishedVm(await actions.unshelve(user, b.id, {}, WAIT));
    expect(back).toMatchObject({ status: 'created', gpu_profile: '3g.71gb', gpus: [expect.objectContaining({ slots: [0, 1, 2, 3] })] });
    expect((await users.me(user)).usage.gpu_milli).toBe(572);
    expect(await placeable('4g.71gb')).toBe(0);

    const vgpu = await sharedHost('release-v', `${region}-v`, 1, GpuSharingModeDto.Vgpu);
    const quarter = finishedVm(await vms.create(user, spec({ name: 'q', gpu_profile: '1/4', region: `${region}-v` }), WAIT));
    expect((await fleet.get(vgpu.id)).gpus[0].vgpu_profile).toBe('1/4');
    expect((await answerOf(vms.create(user, spec({ name: 'h', gpu_profile: '1/2', region: `${region}-v` }), WAIT))).code).toBe('insufficient_capacity');
    finishedVm(await vms.delete(user, quarter.id, WAIT));
    expect((await fleet.get(vgpu.id)).gpus[0]).toMatchObject({ vgpu_profile: null, fractional_vms: 0 });
    expect(finishedVm(await vms.create(user, spec({ name: 'h', gpu_profile: '1/2', region: `${region}-v` }), WAIT)).gpus[0].slots).toEqual([0]);
  }, 60_000);

  it('a GPU changes mode only while nothing holds it: busy is 409 gpu_busy; mig on a model without MIG is a 400 naming sharing_mode and the model', async () => {
    const region = `r-mode-${kind}`;
    const mig = await sharedHost('mode', region, 1, GpuSharingModeDto.Mig);
    const user = await newUser();
    const vm = finishedVm(await vms.create(user, spec({ gpu_profile: '2g.35gb', gpu_model: H200, region }), WAIT));
    const refusal = await fleet.updateGpu(mig.id, mig.gpus[0].id, mode(GpuSharingModeDto.Passthrough)).catch((e: DomainError) => e);
    expect(refusal).toBeInstanceOf(DomainError);
    expect({ status: statusForCode((refusal as DomainError).code), code: (refusal as DomainError).code }).toEqual({ status: 409, code: 'gpu_busy' });
    expect((await fleet.get(mig.id)).gpus[0].sharing_mode).toBe('mig');
    finishedVm(await vms.delete(user, vm.id, WAIT));
    expect((await fleet.updateGpu(mig.id, mig.gpus[0].id, mode(GpuSharingModeDto.Passthrough))).gpus[0].sharing_mode).toBe('passthrough');

    // A whole-GPU VM makes the GPU busy too.
    const whole = finishedVm(await vms.create(user, spec({ gpu_count: 1, gpu_model: H200, region }), WAIT));
    expect(await fleet.updateGpu(mig.id, mig.gpus[0].id, mode(GpuSharingModeDto.Vgpu)).catch((e: DomainError) => e.code)).toBe('gpu_busy');
    finishedVm(await vms.delete(user, whole.id, WAIT));

    const l4 = await fleet.register(host(`mode-l4-${kind}`, region, L4, 1));
    const invalid = await fleet.updateGpu(l4.id, l4.gpus[0].id, mode(GpuSharingModeDto.Mig)).catch((e: DomainError) => e);
    expect({ status: statusForCode((invalid as DomainError).code), fields: (invalid as DomainError).extensions.errors }).toEqual({
      status: 400,
      fields: [{ field: 'sharing_mode', message: expect.stringContaining(L4) }],
    });
  }, 60_000);

  it('quotas count milli-GPUs: a 3g.71gb weighs 429, a 1/4 250; a refusal states milli-GPUs used and allowed', async () => {
    const region = `r-quota-${kind}`;
    await sharedHost('quota', region, 2, GpuSharingModeDto.Mig);
    await sharedHost('quota-v', region, 1, GpuSharingModeDto.Vgpu);
    const user = await newUser();
    expect((await users.setQuota(user.id, Object.assign(new SetQuotaDto(), { gpu_milli: 1000 }))).quota).toMatchObject({ gpus: 1, gpu_milli: 1000 });
    finishedVm(await vms.create(user, spec({ name: 'a', gpu_profile: '3g.71gb', gpu_model: H200, region }), WAIT));
    finishedVm(await vms.create(user, spec({ name: 'b', gpu_profile: '3g.71gb', gpu_model: H200, region }), WAIT));
    const over = await answerOf(vms.create(user, spec({ name: 'c', gpu_profile: '1/4', region }), WAIT));
    expect(over).toMatchObject({ status: 403, code: 'quota_exceeded' });
    expect(over.error!.message).toBe('Quota exceeded for gpus: 858 milli-GPUs used + 250 requested > 1000 allowed (1000 milli-GPUs = 1 GPU)');
    expect(over.error!.extensions).toMatchObject({ limit: 'gpus', quota_milli: 1000, used_milli: 858, requested_milli: 250 });
    // Weights round up (1g = 143), so 858 + 143 = 1001 is over a quota of exactly one GPU.
    expect(await answerOf(vms.create(user, spec({ name: 'd', gpu_profile: '1g.18gb', gpu_model: H200, region }), WAIT))).toMatchObject({ status: 403, code: 'quota_exceeded' });
    expect((await users.me(user)).usage).toMatchObject({ gpus: 0.858, gpu_milli: 858, vms: 2 });
    await users.setQuota(user.id, Object.assign(new SetQuotaDto(), { gpus: 2 }));
    expect(finishedVm(await vms.create(user, spec({ name: 'd', gpu_profile: '1/4', region }), WAIT)).gpu_profile).toBe('1/4');
    expect((await users.me(user)).usage).toMatchObject({ gpus: 1.108, gpu_milli: 1108 });
  }, 60_000);

  it('a fractional create waits in the capacity queue and gets the slices a delete frees; its quota is held while it waits', async () => {
    const region = `r-queue-${kind}`;
    await sharedHost('queue', region, 1, GpuSharingModeDto.Mig);
    const user = await newUser();
    const full = finishedVm(await vms.create(user, spec({ name: 'full', gpu_profile: '7g.141gb', gpu_model: H200, region }), WAIT));
    const waiting = await vms.create(user, spec({ name: 'waits', gpu_profile: '4g.71gb', gpu_model: H200, region, wait_for_capacity_seconds: 600 }), ASYNC);
    expect(waiting).toMatchObject({ kind: 'accepted', queuePosition: 1, vm: { status: 'provisioning', gpu_profile: '4g.71gb', gpus: [] } });
    expect((await users.me(user)).usage.gpu_milli).toBe(1000 + 572);

    finishedVm(await vms.delete(user, full.id, WAIT));
    app.get(CapacityQueueService).kick();
    let placed: VmResponseDto | null = null;
    for (let i = 0; i < 400 && (placed = await vms.get(user, waiting.vm.id)).status === 'provisioning'; i++) await sleep(25);
    expect(placed).toMatchObject({ status: 'created', gpu_profile: '4g.71gb', gpu_model: H200, gpus: [expect.objectContaining({ slots: [0, 1, 2, 3] })] });
    expect((await users.me(user)).usage.gpu_milli).toBe(572);
  }, 60_000);

  it('the Idempotency-Key fingerprint covers gpu_profile: the same key with another profile is refused, with the same one replayed', async () => {
    const region = `r-idem-${kind}`;
    await sharedHost('idem', region, 1, GpuSharingModeDto.Mig);
    const user = await newUser();
    const keyed: RequestOptions = { ...WAIT, idempotencyKey: `slice-${kind}` };
    const first = finishedVm(await vms.create(user, spec({ name: 'idem', gpu_profile: '2g.35gb', gpu_model: H200, region }), keyed));
    const again = await vms.create(user, spec({ name: 'idem', gpu_profile: '2g.35gb', gpu_model: H200, region }), keyed);
    expect(again).toMatchObject({ replayed: true, vm: { id: first.id } });
    const other = await answerOf(vms.create(user, spec({ name: 'idem', gpu_profile: '3g.71gb', gpu_model: H200, region }), keyed));
    expect(other).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
  }, 60_000);

  it('a profile not of the model is a 400 listing the valid ones; both gpu_count and gpu_profile is a 400; no GPU in the right mode is a 422', async () => {
    const region = `r-bad-${kind}`;
    await sharedHost('bad', region, 1, GpuSharingModeDto.Mig);
    const user = await newUser();
    const unknown = await answerOf(vms.create(user, spec({ gpu_profile: '3g.40gb', gpu_model: H200, region }), WAIT));
    expect(unknown).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(unknown.error!.extensions.errors).toEqual([{ field: 'gpu_profile', message: expect.stringContaining('1/8, 1/4, 1/2, 1, 1g.18gb, 1g.18gb+me, 1g.35gb, 2g.35gb, 3g.71gb, 4g.71gb, 7g.141gb') }]);
    const both = await answerOf(vms.create(user, spec({ gpu_profile: '1/4', gpu_count: 1, region }), WAIT));
    expect(both.error!.extensions.errors).toEqual([{ field: 'gpu_profile', message: expect.stringMatching(/^cannot be given with gpu_count \(\d+\)/) }]);
    const noVgpu = await answerOf(vms.create(user, spec({ gpu_profile: '1/4', gpu_model: H200, region }), WAIT));
    expect(noVgpu).toMatchObject({ status: 422, code: 'unsatisfiable' });
    expect(noVgpu.error!.extensions).toMatchObject({ field: 'gpu_profile', available: { shared_gpus: [`${H200} mig`] } });
  }, 60_000);
});

reportSkippedPostgres('fractional GPUs through the services');
