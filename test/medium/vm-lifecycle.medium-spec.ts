import { HostUnreachableError } from '@vmplane/sdk';
import type { AuthUser } from '../../src/auth/auth-user';
import { DomainError } from '../../src/common/domain-errors';
import { statusForCode } from '../../src/common/problem-details';
import { CapacityService } from '../../src/fleet/capacity.service';
import { FleetService } from '../../src/fleet/fleet.service';
import { OperationsService } from '../../src/operations/operations.service';
import { UsersService } from '../../src/users/users.service';
import { CreateVmDto } from '../../src/vms/dto/create-vm.dto';
import { CapacityQueueService } from '../../src/vms/capacity-queue.service';
import { UsageEventsRepository } from '../../src/vms/usage-events.repository';
import { VmActionsService } from '../../src/vms/vm-actions.service';
import { VmOutcome } from '../../src/vms/vm-outcome';
import { RequestOptions, VmsService } from '../../src/vms/vms.service';
import { DB_KINDS, reportSkippedPostgres, sleep } from './support/database';
import { finishedVm, h100Host, newMember } from './support/fixtures';
import { MediumApp, newMediumApp } from './support/medium-app';

const WAIT: RequestOptions = { respondAsync: false, waitSeconds: 10, idempotencyKey: null, requestId: null };
const ASYNC: RequestOptions = { respondAsync: true, waitSeconds: null, idempotencyKey: null, requestId: null };
const H100 = 'h100-80gb';

const gpuHost = (name: string, region: string, gpus: number, cpuCores = 64) => h100Host(name, region, gpus, { cpu_cores: cpuCores, memory_mib: 524_288, disk_gib: 4000 });


function spec(overrides: Partial<CreateVmDto> = {}): CreateVmDto {
  return Object.assign(new CreateVmDto(), { name: 'life', cpu_cores: 4, memory: 8192, disk_size: 20, ...overrides });
}

/** What the HTTP layer would answer for an outcome or an error: one table maps codes to statuses. */
async function statusOf(work: Promise<VmOutcome>): Promise<number | string> {
  try {
    const outcome = await work;
    return outcome.kind === 'done' ? outcome.status : 202;
  } catch (error) {
    if (error instanceof DomainError) return `${statusForCode(error.code)} ${error.code}`;
    throw error;
  }
}

describe.each(DB_KINDS)('the VM lifecycle with real repositories on %s', (kind) => {
  let app: MediumApp;
  let vms: VmsService;
  let actions: VmActionsService;
  let fleet: FleetService;
  let users: UsersService;
  let seq = 0;

  beforeAll(async () => {
    app = await newMediumApp(kind, { STOP_TIMEOUT_SECONDS: '1' });
    vms = app.get(VmsService);
    actions = app.get(VmActionsService);
    fleet = app.get(FleetService);
    users = app.get(UsersService);
  }, 60_000);
  afterAll(() => app?.close());

  const newUser = () => newMember(users, `life${++seq}-${kind}`);
  const usage = async (user: AuthUser) => (await users.me(user)).usage;
  const boundTo = async (hostId: string) => (await fleet.get(hostId)).gpus.filter((g) => g.vm_id !== null).map((g) => g.vm_id);

  it('stop keeps host, GPUs and quota; start and reboot power it on again; every power change is metered', async () => {
    const host = await fleet.register(gpuHost(`stop-${kind}`, `r-stop-${kind}`, 2));
    const user = await newUser();
    const vm = finishedVm(await vms.create(user, spec({ gpu_count: 2, gpu_model: H100, region: `r-stop-${kind}` }), WAIT));
    expect(vm.power_state).toBe('running');
    const held = await usage(user);

    const stopped = finishedVm(await actions.stop(user, vm.id, WAIT));
    expect(stopped).toMatchObject({ status: 'created', power_state: 'shut_off' });
    expect(await usage(user)).toEqual(held);
    expect(await boundTo(host.id)).toEqual([vm.id, vm.id]);
    const [onHypervisor] = (await app.hypervisor.listVms()).filter((v) => v.metadata?.vmId === vm.id);
    expect(onHypervisor.power_state).toBe('shut_off');

    expect(finishedVm(await actions.start(user, vm.id, WAIT)).power_state).toBe('running');
    expect(finishedVm(await actions.reboot(user, vm.id, { hard: true }, WAIT)).power_state).toBe('running');
    const events = await app.uow.read((tx) => app.get(UsageEventsRepository).listForVm(tx, vm.id));
    expect(events.map((e) => e.kind)).toEqual(['gpu_claim', 'power_on', 'power_off', 'power_on']);
    expect(events[0]).toMatchObject({ gpuCount: 2, gpuModel: H100, gpuMilli: 2000, gpuProfile: null });
    const ops = (await vms.operations(user, vm.id)).items.map((o) => `${o.action}:${o.status}`);
    expect(ops).toEqual(['reboot:succeeded', 'start:succeeded', 'stop:succeeded', 'create:succeeded']);
  });

  it('shelve gives back exactly the VM’s GPUs, host capacity and quota and keeps its disk; unshelve places it again', async () => {
    const region = `r-shelve-${kind}`;
    const host = await fleet.register(gpuHost(`shelve-${kind}`, region, 2));
    const user = await newUser();
    const vm = finishedVm(await vms.create(user, spec({ gpu_count: 2, gpu_model: H100, region }), WAIT));
    const capacity = async () => (await app.get(CapacityService).gpuCapacity()).items.find((c) => c.region === region)!;
    expect((await capacity()).free).toBe(0);

    const shelved = finishedVm(await actions.shelve(user, vm.id, WAIT));
    expect(shelved).toMatchObject({ status: 'shelved', power_state: 'shut_off', gpus: expect.any(Array) });
    expect((await capacity()).free).toBe(2);
    expect(await boundTo(host.id)).toEqual([]);
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
    expect((await fleet.get(host.id)).used).toEqual({ cpu_cores: 0, memory_mib: 0, disk_gib: 0 });
    expect((await app.hypervisor.listVms()).filter((v) => v.metadata?.vmId === vm.id)).toEqual([]);

    const back = finishedVm(await actions.unshelve(user, vm.id, {}, WAIT));
    expect(back).toMatchObject({ status: 'created', power_state: 'running', gpu_count: 2, region });
    expect(await boundTo(host.id)).toEqual([vm.id, vm.id]);
    expect(await usage(user)).toEqual({ vcpus: 4, memory_mib: 8192, gpus: 2, gpu_milli: 2000, vms: 1 });
    const events = await app.uow.read((tx) => app.get(UsageEventsRepository).listForVm(tx, vm.id));
    expect(events.map((e) => e.kind)).toEqual(['gpu_claim', 'power_on', 'power_off', 'gpu_release', 'gpu_claim', 'power_on']);
  });

  it('unshelving onto a full fleet answers 503 with alternatives and the VM stays shelved', async () => {
    const region = `r-full-${kind}`;
    await fleet.register(gpuHost(`full-${kind}`, region, 1));
    const [owner, other] = [await newUser(), await newUser()];
    const vm = finishedVm(await vms.create(owner, spec({ gpu_count: 1, gpu_model: H100, region }), WAIT));
    finishedVm(await actions.shelve(owner, vm.id, WAIT));
    finishedVm(await vms.create(other, spec({ gpu_count: 1, gpu_model: H100, region }), WAIT));
    expect(await statusOf(actions.unshelve(owner, vm.id, {}, WAIT))).toBe('503 insufficient_capacity');
    expect((await vms.get(owner, vm.id)).status).toBe('shelved');
    expect(await usage(owner)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
  });

  it('an unshelve whose new host does not answer stays shelved, gives the claim back and marks that host unreachable; the next unshelve goes elsewhere', async () => {
    const region = `r-dead-${kind}`;
    const first = await fleet.register(gpuHost(`dead-a-${kind}`, region, 1));
    const owner = await newUser();
    const vm = finishedVm(await vms.create(owner, spec({ gpu_count: 1, gpu_model: H100, region }), WAIT));
    finishedVm(await actions.shelve(owner, vm.id, WAIT));
    const refusing = jest.spyOn(app.hypervisor, 'unshelveVm').mockRejectedValue(new HostUnreachableError(first.name, 'qemu+ssh://dead/system', 'Connection refused'));
    try {
      expect(await statusOf(actions.unshelve(owner, vm.id, {}, WAIT))).toBe('503 hypervisor_unavailable');
    } finally {
      refusing.mockRestore();
    }
    expect((await vms.get(owner, vm.id)).status).toBe('shelved');
    expect(await usage(owner)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
    expect((await fleet.get(first.id)).unreachable_since).toEqual(expect.any(String));
    const second = await fleet.register(gpuHost(`dead-b-${kind}`, region, 1));
    const back = finishedVm(await actions.unshelve(owner, vm.id, {}, WAIT));
    expect(back.status).toBe('created');
    expect(await boundTo(second.id)).toEqual([vm.id]);
  });

  it('resize grows and shrinks a shut-off VM on its host, GPUs included; a shelved VM changes only its record', async () => {
    const region = `r-resize-${kind}`;
    const host = await fleet.register(gpuHost(`resize-${kind}`, region, 3));
    const user = await newUser();
    const vm = finishedVm(await vms.create(user, spec({ gpu_count: 1, gpu_model: H100, region }), WAIT));
    expect(await statusOf(actions.resize(user, vm.id, { cpu_cores: 8 }, WAIT))).toBe('409 invalid_state');
    finishedVm(await actions.stop(user, vm.id, WAIT));

    const grown = finishedVm(await actions.resize(user, vm.id, { cpu_cores: 8, memory: 16384, gpu_count: 3 }, WAIT));
    expect(grown).toMatchObject({ cpu_cores: 8, memory: 16384, gpu_count: 3, power_state: 'shut_off' });
    expect(await boundTo(host.id)).toEqual([vm.id, vm.id, vm.id]);
    expect((await fleet.get(host.id)).used).toMatchObject({ cpu_cores: 8, memory_mib: 16384 });
    expect(await usage(user)).toEqual({ vcpus: 8, memory_mib: 16384, gpus: 3, gpu_milli: 3000, vms: 1 });
    const [onHypervisor] = (await app.hypervisor.listVms()).filter((v) => v.metadata?.vmId === vm.id);
    expect(onHypervisor).toMatchObject({ cpu_cores: 8, memory: 16384 });
    expect(onHypervisor.gpus).toHaveLength(3);

    const shrunk = finishedVm(await actions.resize(user, vm.id, { cpu_cores: 2, gpu_count: 1 }, WAIT));
    expect(shrunk).toMatchObject({ cpu_cores: 2, gpu_count: 1 });
    expect(await boundTo(host.id)).toEqual([vm.id]);
    expect(await usage(user)).toEqual({ vcpus: 2, memory_mib: 16384, gpus: 1, gpu_milli: 1000, vms: 1 });

    // More GPUs than the host has free: shelve first, and it is placed wherever it fits.
    expect(await statusOf(actions.resize(user, vm.id, { gpu_count: 4 }, WAIT))).toBe('409 resize_does_not_fit');
    finishedVm(await actions.shelve(user, vm.id, WAIT));
    expect(finishedVm(await actions.resize(user, vm.id, { gpu_count: 2, memory: 4096 }, WAIT))).toMatchObject({ status: 'shelved', gpu_count: 2, memory: 4096 });
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
  });

  it('answers every action from every state as the state machine says (HTTP status and code)', async () => {
    const region = `r-table-${kind}`;
    await fleet.register(gpuHost(`table-${kind}`, region, 0, 256));
    const user = await newUser();
    const make = async (state: string): Promise<string> => {
      const vm = finishedVm(await vms.create(user, spec({ region }), WAIT));
      if (state === 'shut_off') finishedVm(await actions.stop(user, vm.id, WAIT));
      if (state === 'shelved') finishedVm(await actions.shelve(user, vm.id, WAIT));
      if (state === 'deleted') finishedVm(await vms.delete(user, vm.id, WAIT));
      return vm.id;
    };
    const calls: Record<string, (id: string) => Promise<VmOutcome>> = {
      stop: (id) => actions.stop(user, id, WAIT),
      start: (id) => actions.start(user, id, WAIT),
      reboot: (id) => actions.reboot(user, id, {}, WAIT),
      shelve: (id) => actions.shelve(user, id, WAIT),
      unshelve: (id) => actions.unshelve(user, id, {}, WAIT),
      resize: (id) => actions.resize(user, id, { memory: 4096 }, WAIT),
      delete: (id) => vms.delete(user, id, WAIT),
    };
    const expected: Record<string, Record<string, number | string>> = {
      running: { stop: 200, start: '409 invalid_state', reboot: 200, shelve: 200, unshelve: '409 invalid_state', resize: '409 invalid_state', delete: 200 },
      shut_off: { stop: '409 invalid_state', start: 200, reboot: '409 invalid_state', shelve: 200, unshelve: '409 invalid_state', resize: 200, delete: 200 },
      shelved: { stop: '409 invalid_state', start: '409 invalid_state', reboot: '409 invalid_state', shelve: '409 invalid_state', unshelve: 200, resize: 200, delete: 200 },
      deleted: { stop: '409 invalid_state', start: '409 invalid_state', reboot: '409 invalid_state', shelve: '409 invalid_state', unshelve: '409 invalid_state', resize: '409 invalid_state', delete: 200 },
    };
    const seen: Record<string, Record<string, number | string>> = {};
    for (const state of Object.keys(expected)) {
      seen[state] = {};
      for (const [action, call] of Object.entries(calls)) seen[state][action] = await statusOf(call(await make(state)));
    }
    expect(seen).toEqual(expected);
  });

  it('one operation at a time: twenty concurrent stops and starts leave one consistent state, agreeing with the hypervisor', async () => {
    const region = `r-race-${kind}`;
    await fleet.register(gpuHost(`race-${kind}`, region, 0, 256));
    const user = await newUser();
    const vm = finishedVm(await vms.create(user, spec({ region }), WAIT));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => statusOf(i % 2 === 0 ? actions.stop(user, vm.id, ASYNC) : actions.start(user, vm.id, ASYNC))));
    for (const result of results) expect([200, 202, '409 invalid_state', '409 operation_in_progress']).toContain(result);
    // Let whatever was accepted finish.
    for (let i = 0; i < 200 && (await vms.operations(user, vm.id)).items.some((o) => o.status === 'running' || o.status === 'pending'); i++) await sleep(25);
    const ops = (await vms.operations(user, vm.id)).items;
    expect(ops.filter((o) => o.status === 'running' || o.status === 'pending')).toEqual([]);
    const after = await vms.get(user, vm.id);
    const [onHypervisor] = (await app.hypervisor.listVms()).filter((v) => v.metadata?.vmId === vm.id);
    expect(after.power_state).toBe(onHypervisor.power_state);
  });

  it('a stop racing a delete never leaks GPUs', async () => {
    const region = `r-leak-${kind}`;
    const host = await fleet.register(gpuHost(`leak-${kind}`, region, 2));
    const user = await newUser();
    for (let round = 0; round < 4; round++) {
      const vm = finishedVm(await vms.create(user, spec({ gpu_count: 2, gpu_model: H100, region }), WAIT));
      await Promise.all([statusOf(actions.stop(user, vm.id, WAIT)), statusOf(vms.delete(user, vm.id, WAIT))]);
      for (let i = 0; i < 200 && (await vms.get(user, vm.id)).status === 'deleting'; i++) await sleep(25);
      const now = await vms.get(user, vm.id);
      if (now.status !== 'deleted') finishedVm(await vms.delete(user, vm.id, WAIT));
      expect(await boundTo(host.id)).toEqual([]);
    }
    expect(await usage(user)).toEqual({ vcpus: 0, memory_mib: 0, gpus: 0, gpu_milli: 0, vms: 0 });
  });

  describe('the capacity queue', () => {
    const region = `r-queue-${kind}`;
    const request = (gpus: number, name: string) => spec({ name, gpu_count: gpus, gpu_model: H100, region, wait_for_capacity_seconds: 600 });

    it('hands freed GPUs to the oldest waiting request, never to a newer one; a smaller request passes only onto hosts the head cannot use', async () => {
      const big = await fleet.register(gpuHost(`queue-big-${kind}`, region, 2));
      const user = await newUser();
      const holder = finishedVm(await vms.create(user, spec({ name: 'holder', gpu_count: 2, gpu_model: H100, region }), WAIT));
      // Three requests wait, in this order: 1 GPU, 2 GPUs, 1 GPU.
      const first = await vms.create(user, request(1, 'first'), ASYNC);
      const second = await vms.create(user, request(2, 'second'), ASYNC);
      const third = await vms.create(user, request(1, 'third'), ASYNC);
      for (const [outcome, position] of [
        [first, 1],
        [second, 2],
        [third, 3],
      ] as const) {
        expect(outcome).toMatchObject({ kind: 'accepted', queuePosition: position, vm: { status: 'provisioning', host: null } });
      }
      const queues = (await app.get(CapacityService).gpuCapacity()).queues;
      expect(queues).toEqual([{ gpu_model: H100, region, length: 3, oldest_age_seconds: expect.any(Number) }]);
      const op = async (outcome: VmOutcome) => app.get(OperationsService).get(user, (outcome as { operationId: string }).operationId);
      expect(await op(third)).toMatchObject({ status: 'waiting_for_capacity', queue_position: 3, deadline_at: expect.any(String) });

      // Two GPUs free: the first (1 GPU) gets one; the second (2) does not fit; the third (1) could, but must not pass the second.
      finishedVm(await vms.delete(user, holder.id, WAIT));
      const settled = async (outcome: VmOutcome, status: string) => {
        for (let i = 0; i < 400 && (await op(outcome)).status !== status; i++) await sleep(25);
        return (await op(outcome)).status;
      };
      expect(await settled(first, 'succeeded')).toBe('succeeded');
      await sleep(300);
      expect((await op(second)).status).toBe('waiting_for_capacity');
      expect((await op(third)).status).toBe('waiting_for_capacity');
      expect(await boundTo(big.id)).toEqual([first.vm.id]);

      // A host the 2-GPU head could never use: the third may pass it there.
      await fleet.register(gpuHost(`queue-small-${kind}`, region, 1));
      app.get(CapacityQueueService).kick();
      expect(await settled(third, 'succeeded')).toBe('succeeded');
      expect((await op(second)).status).toBe('waiting_for_capacity');

      // The first goes: the head of the queue gets both GPUs of the big host.
      finishedVm(await vms.delete(user, first.vm.id, WAIT));
      expect(await settled(second, 'succeeded')).toBe('succeeded');
      expect(await boundTo(big.id)).toEqual([second.vm.id, second.vm.id]);
      expect((await vms.get(user, second.vm.id)).status).toBe('created');
      for (const id of [second.vm.id, third.vm.id]) finishedVm(await vms.delete(user, id, WAIT));
    });

    it('a wait that expires fails with insufficient_capacity and gives the quota back; a delete cancels a waiting request', async () => {
      const user = await newUser();
      const holder = finishedVm(await vms.create(user, spec({ name: 'hold', gpu_count: 2, gpu_model: H100, region }), WAIT));
      await fleet.update((await fleet.list()).items.find((h) => h.name === `queue-small-${kind}`)!.id, { state: 'draining' } as never);
      const expiring = await vms.create(user, request(2, 'expiring'), ASYNC);
      const cancelled = await vms.create(user, request(2, 'cancelled'), ASYNC);
      expect(await usage(user)).toMatchObject({ gpus: 6, vms: 3 });

      const deleted = finishedVm(await vms.delete(user, cancelled.vm.id, WAIT));
      expect(deleted.status).toBe('deleted');
      const cancelledOp = await app.get(OperationsService).get(user, (cancelled as { operationId: string }).operationId);
      expect(cancelledOp).toMatchObject({ status: 'failed', error: { code: 'cancelled' } });

      app.clock.advance(601_000);
      app.get(CapacityQueueService).kick();
      const expiredOp = async () => app.get(OperationsService).get(user, (expiring as { operationId: string }).operationId);
      for (let i = 0; i < 200 && (await expiredOp()).status === 'waiting_for_capacity'; i++) await sleep(25);
      expect(await expiredOp()).toMatchObject({ status: 'failed', error: { code: 'insufficient_capacity' } });
      expect((await vms.get(user, expiring.vm.id)).status).toBe('failed');
      expect(await usage(user)).toEqual({ vcpus: 4, memory_mib: 8192, gpus: 2, gpu_milli: 2000, vms: 1 });
      finishedVm(await vms.delete(user, holder.id, WAIT));
    });
  });
});

reportSkippedPostgres('the VM lifecycle with real repositories');
