import type { AuthUser } from '../../src/auth/auth-user';
import { HostUnreachableError } from '@vmplane/sdk';
import { HypervisorUnavailableError, InsufficientCapacityError, QuotaExceededError } from '../../src/common/domain-errors';
import { FleetRepository } from '../../src/fleet/fleet.repository';
import { FleetService } from '../../src/fleet/fleet.service';
import { PlacementService } from '../../src/fleet/placement.service';
import { platformVmIdFromLabels } from '../../src/hypervisor/hypervisor.constants';
import { InstallationService } from '../../src/installation/installation.service';
import { ReconcilerService } from '../../src/reconciler/reconciler.service';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import { VmOutcome } from '../../src/vms/vm-outcome';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { DB_KINDS, deferred, errorOf, reportSkippedPostgres, rows, scalar } from './support/database';
import { VmEvent } from '../../src/vms/vm-state-machine';
import { VmsRepository } from '../../src/vms/vms.repository';
import { finished, h100Host, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const H100 = 'h100-80gb';
const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };

function vmSpec(overrides: Partial<CreateVmDto> = {}): CreateVmDto {
  return Object.assign(new CreateVmDto(), { name: 'medium', cpu_cores: 2, memory: 4096, disk_size: 20, ...overrides });
}


const gpuHost = (name: string, gpus: number) => h100Host(name, 'eu-west', gpus, { cpu_cores: 128, memory_mib: 1_048_576, disk_gib: 10_000 });

describe.each(DB_KINDS)('VmsService, ReconcilerService with real repositories on %s', (kind) => {
  let app: MediumApp;
  let vms: VmsService;
  let fleet: FleetService;
  let users: UsersService;
  let seq = 0;

  beforeAll(async () => {
    app = await newMediumApp(kind);
    vms = app.get(VmsService);
    fleet = app.get(FleetService);
    users = app.get(UsersService);
  }, 60_000);
  afterAll(() => app?.close());

  const newUser = () => newMember(users, `u${++seq}-${kind}`);

  const usage = async (user: AuthUser) => (await users.me(user)).usage;
  const onHypervisor = async (vmId: string) => (await app.hypervisor.listVms()).filter((vm) => platformVmIdFromLabels(vm.labels) === vmId);
  it('create records the VM, claims host, GPUs and quota, and makes exactly one hypervisor VM carrying its id', async () => {
    const host = await fleet.register(gpuHost(`create-${kind}`, 2));
    const user = await newUser();
    const outcome = finished(await vms.create(user, vmSpec({ gpu_count: 2, gpu_model: H100 }), WAIT));
    expect(outcome.status).toBe(201);
    expect(outcome.vm).toMatchObject({ status: 'created', gpu_count: 2, gpu_model: H100, region: 'eu-west', host: null });
    expect(new Set(outcome.vm.gpus.map((g) => g.id))).toEqual(new Set(host.gpus.map((g) => g.id)));

    const [hv] = await onHypervisor(outcome.vm.id);
    expect(hv).toMatchObject({ cpu_cores: 2, memory: 4096, disk_size: 20, host: host.name });
    expect(new Set(hv.gpus)).toEqual(new Set(host.gpus.map((g) => g.uuid)));
    expect((await fleet.get(host.id)).used).toEqual({ cpu_cores: 2, memory_mib: 4096, disk_gib: 20 });
    expect(await usage(user)).toEqual({ vcpus: 2, memory_mib: 4096, gpus: 2, gpu_milli: 2000, vms: 1 });
    const ops = await vms.operations(user, outcome.vm.id);
    expect(ops.items).toEqual([expect.objectContaining({ action: 'create', status: 'succeeded', attempts: 1 })]);
  });

  it('a create whose VM left provisioning during its hypervisor call records nothing of its outcome: superseded, no power-on event', async () => {
    await fleet.register(gpuHost(`superseded-${kind}`, 1));
    const user = await newUser();
    const callStarted = deferred();
    const gate = deferred();
    const createVm = app.hypervisor.createVm.bind(app.hypervisor);
    const spy = jest.spyOn(app.hypervisor, 'createVm').mockImplementationOnce(async (request) => {
      callStarted.resolve();
      await gate.promise;
      return createVm(request);
    });
    try {
      const pending = vms.create(user, vmSpec({ gpu_count: 1, gpu_model: H100 }), WAIT).catch((error: unknown) => error);
      await callStarted.promise;
      const [{ id }] = await app.uow.read((tx) => rows<{ id: string }>(tx, 'SELECT id FROM vms WHERE owner_id = $1', [user.id]));
      const moved = await app.uow.transaction((tx) => app.get(VmsRepository).transition(tx, id, VmEvent.ProvisionFailed, { statusReason: 'failed elsewhere' }));
      expect(moved.applied).toBe(true);
      gate.resolve();
      await pending;

      const [op] = (await vms.operations(user, id)).items;
      expect(op).toMatchObject({ action: 'create', status: 'failed', error: { code: 'operation_superseded' } });
      expect((await vms.get(user, id)).status).toBe('failed');
      const kinds = await app.uow.read((tx) => rows<{ kind: string }>(tx, 'SELECT kind FROM usage_events WHERE vm_id = $1', [id]));
      expect(kinds.map((k) => k.kind)).not.toContain('power_on');
      // What the call made on the hypervisor belongs to no live VM: the next reconcile pass removes it.
      expect(await onHypervisor(id)).toHaveLength(1);
      expect(await app.get(ReconcilerService).runNow()).toMatchObject({ orphans_found: 1, orphans_removed: 1 });
      expect(await onHypervisor(id)).toHaveLength(0);
    } finally {
      spy.mockRestore();
    }
  });

  it('delete removes the hypervisor VM and gives back host capacity, GPUs and quota once; the record stays', async () => {
    const host = await fleet.register(gpuHost(`delete-${kind}`, 1));
    const user = await newUser();
    const created = finished(await vms.create(user, vmSpec({ gpu_count: 1, gpu_model: H100, region: 'eu-west' }), WAIT));
    const deleted = finished(await vms.delete(user, created.vm.id, WAIT));
    expect(deleted).toMatchObject({ status: 200, vm: { id: created.vm.id, status: 'deleted' } });
    expect(deleted.vm.deleted_at).not.toBeNull();
    expect(await onHypervisor(created.vm.id)).toEqual([]);
    expect((await fleet.get(host.id)).used).toEqual({ cpu_cores: 0, memory_mib: 0, disk_gib: 0 });
    expect((await fleet.get(host.id)).gpus[0].vm_id).toBeNull();
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
    expect((await vms.get(user, created.vm.id)).status).toBe('deleted');
  });

  it('ten concurrent deletes of one VM: one delete operation, one hypervisor call, resources released once', async () => {
    await fleet.register(gpuHost(`race-delete-${kind}`, 1));
    const user = await newUser();
    const created = finished(await vms.create(user, vmSpec({ gpu_count: 1 }), WAIT));
    const spy = jest.spyOn(app.hypervisor, 'deleteVm');
    try {
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => vms.delete(user, created.vm.id, WAIT)));
      for (const outcome of outcomes) expect(finished(outcome).vm.status).toBe('deleted');
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
    const ops = (await vms.operations(user, created.vm.id)).items;
    expect(ops.filter((op) => op.action === 'delete')).toHaveLength(1);
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
  });

  it('a request over quota is refused with the limit named, and records nothing', async () => {
    await fleet.register(gpuHost(`quota-${kind}`, 4));
    const user = await newUser();
    await users.setQuota(user.id, { gpus: 1 });
    const error = await errorOf(() => vms.create(user, vmSpec({ gpu_count: 2, gpu_model: H100 }), WAIT));
    expect(error).toBeInstanceOf(QuotaExceededError);
    expect((error as QuotaExceededError).extensions).toMatchObject({ limit: 'gpus', quota: 1, used: 0, requested: 2 });
    expect((await vms.list(user, { status: undefined })).items).toEqual([]);
    const count = await app.uow.read((tx) => scalar(tx, 'SELECT COUNT(*) FROM vms WHERE owner_id = $1', [user.id]));
    expect(count).toBe(0);
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
  });

  it('twenty concurrent one-GPU creates on eight free GPUs: exactly eight succeed, on distinct GPUs, and the hypervisor agrees', async () => {
    const host = await fleet.register({ ...gpuHost(`race-place-${kind}`, 8), region: 'race' });
    const user = await newUser();
    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => vms.create(user, vmSpec({ name: `race-${i}`, gpu_count: 1, region: 'race' }), WAIT)),
    );
    const created = settled.filter((s) => s.status === 'fulfilled').map((s) => finished((s as PromiseFulfilledResult<VmOutcome>).value));
    const refused = settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason);
    expect(created).toHaveLength(8);
    expect(refused).toHaveLength(12);
    for (const reason of refused) expect(reason).toBeInstanceOf(InsufficientCapacityError);
    const gpus = created.flatMap((c) => c.vm.gpus.map((g) => g.id));
    expect(new Set(gpus)).toEqual(new Set(host.gpus.map((g) => g.id)));
    const hypervisorGpus = (await app.hypervisor.listVms()).filter((vm) => vm.host === host.name).flatMap((vm) => vm.gpus);
    expect(hypervisorGpus.sort()).toEqual(host.gpus.map((g) => g.uuid).sort());
    const live = await app.uow.read((tx) =>
      rows<{ gpu_id: string }>(tx, 'SELECT a.gpu_id FROM gpu_allocations a JOIN gpus g ON g.id = a.gpu_id WHERE g.host_id = $1 AND a.released_at IS NULL', [host.id]),
    );
    expect(live).toHaveLength(8);
  });

  it('concurrent CPU creates that fill the host placement prefers go on to another host that fits, not to a 503', async () => {
    const region = `spill-${kind}`;
    // Two hosts in a region of their own: the small one (which placement prefers) fills after four of the sixteen.
    const small = await fleet.register(h100Host(`spill-small-${kind}`, region, 0, { cpu_cores: 4, memory_mib: 65_536, disk_gib: 1_000 }));
    const big = await fleet.register(h100Host(`spill-big-${kind}`, region, 0, { cpu_cores: 1_000, memory_mib: 4_194_304, disk_gib: 100_000 }));
    const user = await newUser();
    const spec = (i: number) => vmSpec({ name: `spill-${i}`, cpu_cores: 1, memory: 1024, disk_size: 10, region });
    const outcomes = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => vms.create(user, spec(i), WAIT)));

    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
    const usedSmall = (await fleet.get(small.id)).used.cpu_cores;
    expect(usedSmall).toBe(4);
    expect(usedSmall + (await fleet.get(big.id)).used.cpu_cores).toBe(16);
    expect(await usage(user)).toMatchObject({ vcpus: 16, vms: 16 });
  });

  if (kind === 'postgres') {
    it('PostgreSQL only: a host that other creates fill between each plan and its claim is left out of the next plan, rather than chosen until the retries run out', async () => {
      const region = `churn-${kind}`;
      const small = await fleet.register(h100Host(`churn-small-${kind}`, region, 0, { cpu_cores: 4, memory_mib: 65_536, disk_gib: 1_000 }));
      const big = await fleet.register(h100Host(`churn-big-${kind}`, region, 0, { cpu_cores: 1_000, memory_mib: 4_194_304, disk_gib: 100_000 }));
      const placement = app.get(PlacementService);
      const repository = app.get(FleetRepository);
      const whole = { cpuCores: 4, memoryMib: 65_536, diskGib: 1_000 };
      const claim = placement.claim.bind(placement);
      let competed = 0;
      // What a busy host sees: between this create's plan (the host had room) and its claim, other creates
      // commit claims that fill it; they finish and give the room back before this create plans again.
      const spy = jest.spyOn(placement, 'claim').mockImplementation(async (tx, vmId, plan, request, allocationIds) => {
        if (plan.hostId !== small.id) return claim(tx, vmId, plan, request, allocationIds);
        competed++;
        expect(await app.uow.transaction((other) => repository.claimHost(other, small.id, whole))).toBe(true);
        try {
          return await claim(tx, vmId, plan, request, allocationIds);
        } finally {
          await app.uow.transaction((other) => repository.releaseHost(other, small.id, whole));
        }
      });
      try {
        const outcome = finished(await vms.create(await newUser(), vmSpec({ name: 'churn', cpu_cores: 1, memory: 1024, disk_size: 10, region }), WAIT));
        expect(outcome.status).toBe(201);
        expect(competed).toBe(1);
        expect((await fleet.get(big.id)).used.cpu_cores).toBe(1);
        expect((await fleet.get(small.id)).used.cpu_cores).toBe(0);
      } finally {
        spy.mockRestore();
      }
    });
  }

  it('reconcile removes its own orphan made through the SDK and fails a VM deleted behind the platform’s back, releasing it', async () => {
    const host = await fleet.register({ ...gpuHost(`reconcile-${kind}`, 1), region: 'reconcile' });
    const user = await newUser();
    const kept = finished(await vms.create(user, vmSpec({ gpu_count: 1, gpu_model: H100, region: 'reconcile' }), WAIT));
    const gone = finished(await vms.create(user, vmSpec({ name: 'gone', region: 'reconcile' }), WAIT));
    const [goneOnHypervisor] = await onHypervisor(gone.vm.id);
    await app.hypervisor.deleteVm(goneOnHypervisor.id);
    const installationId = await app.get(InstallationService).id();
    const strayId = '00000000-0000-7000-8000-000000000001';
    const orphan = await app.hypervisor.createVm({
      name: 'stray',
      cpuCores: 1,
      memory: 256,
      diskSize: 1,
      labels: [`vmplane.vm-id=${strayId}`],
      metadata: { installationId, vmId: strayId, ownerId: user.id },
    });

    const report = (await app.get(ReconcilerService).runNow())!;
    expect(report).toMatchObject({ orphans_found: 1, orphans_removed: 1, missing_vms_failed: 1 });
    expect(await app.hypervisor.getVm(orphan.id)).toBeNull();
    expect(await onHypervisor(kept.vm.id)).toHaveLength(1);
    expect((await vms.get(user, kept.vm.id)).status).toBe('created');
    expect(await vms.get(user, gone.vm.id)).toMatchObject({ status: 'failed', status_reason: expect.stringMatching(/missing from the hypervisor/) });
    expect(await usage(user)).toEqual({ vcpus: 2, memory_mib: 4096, gpus: 1, gpu_milli: 1000, vms: 1 });
    expect((await fleet.get(host.id)).used.cpu_cores).toBe(2);
  });

  it('a create that cannot reach its host marks the host unreachable, so placement leaves it out; a reconcile pass that finds it answering clears the mark', async () => {
    const flaky = await fleet.register({ ...gpuHost(`flaky-${kind}`, 1), region: 'flaky' });
    const user = await newUser();
    const refusing = jest.spyOn(app.hypervisor, 'createVm').mockRejectedValue(new HostUnreachableError(flaky.name, 'qemu+ssh://flaky/system', 'Connection refused'));
    try {
      expect(await errorOf(() => vms.create(user, vmSpec({ region: 'flaky' }), WAIT))).toBeInstanceOf(HypervisorUnavailableError);
    } finally {
      refusing.mockRestore();
    }
    expect((await fleet.get(flaky.id)).unreachable_since).toEqual(expect.any(String));
    // The region's only host is left out: a refusal for now, with no hypervisor call.
    const calls = jest.spyOn(app.hypervisor, 'createVm');
    try {
      expect(await errorOf(() => vms.create(user, vmSpec({ region: 'flaky' }), WAIT))).toBeInstanceOf(InsufficientCapacityError);
      expect(calls).not.toHaveBeenCalled();
    } finally {
      calls.mockRestore();
    }
    await app.get(ReconcilerService).runNow();
    expect((await fleet.get(flaky.id)).unreachable_since).toBeNull();
    expect(finished(await vms.create(user, vmSpec({ region: 'flaky' }), WAIT)).vm).toMatchObject({ status: 'created', region: 'flaky' });
  });

  it('reconcile never touches another installation’s VMs, nor unclaimed ones: it reports them', async () => {
    const other = await app.hypervisor.createVm({
      name: 'theirs',
      cpuCores: 1,
      memory: 256,
      diskSize: 1,
      labels: ['vmplane.vm-id=00000000-0000-7000-8000-0000000000aa'],
      metadata: { installationId: '00000000-0000-7000-8000-00000000beef', vmId: '00000000-0000-7000-8000-0000000000aa', ownerId: 'someone' },
    });
    const unclaimed = await app.hypervisor.createVm({ name: 'hand-made', cpuCores: 1, memory: 256, diskSize: 1, labels: ['vmplane.vm-id=00000000-0000-7000-8000-0000000000bb'] });
    try {
      const report = (await app.get(ReconcilerService).runNow())!;
      expect(report).toMatchObject({ orphans_found: 0, orphans_removed: 0, foreign_vms: 2 });
      expect(report.drift).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ kind: 'foreign_vm', hypervisor_vm_id: other.id, action: expect.stringMatching(/installation 00000000-0000-7000-8000-00000000beef/) }),
          expect.objectContaining({ kind: 'foreign_vm', hypervisor_vm_id: unclaimed.id }),
        ]),
      );
      expect(await app.hypervisor.getVm(other.id)).not.toBeNull();
      expect(await app.hypervisor.getVm(unclaimed.id)).not.toBeNull();
    } finally {
      await app.hypervisor.deleteVm(other.id);
      await app.hypervisor.deleteVm(unclaimed.id);
    }
  });
});

reportSkippedPostgres('VmsService, ReconcilerService with real repositories');
