import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { Clock } from '../common/clock';
import { CapacityAlternative, ConflictError, InsufficientCapacityError, NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import { PlacementConflictError, PlacementService } from '../fleet/placement.service';
import { IdempotencyRepository, KeyClaim, fingerprint } from '../idempotency/idempotency.repository';
import { OperationAction, OperationEntity } from '../operations/operation.entity';
import { Lease, OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { UsersRepository } from '../users/users.repository';
import { RebootVmDto, ResizeVmDto, UnshelveVmDto } from './dto/vm-actions.dto';
import { CapacityQueueService } from './capacity-queue.service';
import { UsageEventKind } from './usage-event.entity';
import { UsageEventsRepository } from './usage-events.repository';
import { VmEntity, VmStatus } from './vm.entity';
import { toVmResponse } from './vm.mapper';
import { CAPACITY_RETRY_AFTER_SECONDS, VmOutcome } from './vm-outcome';
import { RequestOptions, Started, VmOperationRunner, viewerOf } from './vm-operation-runner';
import type { ResizePlan } from './vm-lifecycle.handler';
import { VmResources, amountsOf } from './vm-resources.service';
import { slotClaimsOf } from './vm-gpu-devices';
import { VmAction, assertActionAllowed } from './vm-state-machine';
import { VmsRepository, VmPlacement } from './vms.repository';
import { describeRequest, isOpenOperationTaken, operationInProgress } from './vms.service';

const OPERATION_OF: Record<Exclude<VmAction, VmAction.Delete | VmAction.Update>, OperationAction> = {
  [VmAction.Stop]: OperationAction.Stop,
  [VmAction.Start]: OperationAction.Start,
  [VmAction.Reboot]: OperationAction.Reboot,
  [VmAction.Shelve]: OperationAction.Shelve,
  [VmAction.Unshelve]: OperationAction.Unshelve,
  [VmAction.Resize]: OperationAction.Resize,
};

type ActionStep =
  | Started
  | { kind: 'done'; vm: VmEntity }
  | { kind: 'queued'; vm: VmEntity; op: OperationEntity; position: number }
  | { kind: 'in_flight'; vm: VmEntity; op: OperationEntity }
  | { kind: 'refused'; reason: string; alternatives: CapacityAlternative[]; vmId: string }
  | { kind: 'seen'; claim: Extract<KeyClaim, { kind: 'seen' }> };

/** One action request, as recording it needs it. */
interface ActionRequest {
  user: AuthUser;
  id: string;
  action: Exclude<VmAction, VmAction.Delete | VmAction.Update>;
  body: object;
  options: RequestOptions;
  /** Hosts an earlier attempt of an unshelve found full when it claimed them; later plans leave them out. */
  fullHosts?: Set<string>;
}

/**
 * Stop, start, reboot, shelve, unshelve and resize: each recorded as an
 * operation of the VM (one open at a time), with the same machinery as create
 * and delete — Prefer: respond-async or wait=N, Idempotency-Key, the
 * operation log — and carried out by VmLifecycleHandler.
 */
@Injectable()
export class VmActionsService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly fleet: FleetRepository,
    private readonly users: UsersRepository,
    private readonly placement: PlacementService,
    private readonly resources: VmResources,
    private readonly usage: UsageEventsRepository,
    private readonly idempotency: IdempotencyRepository,
    private readonly queue: CapacityQueueService,
    private readonly runner: VmOperationRunner,
    private readonly worker: OperationWorker,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  stop(user: AuthUser, id: string, options: RequestOptions): Promise<VmOutcome> {
    return this.act({ user, id, action: VmAction.Stop, body: {}, options });
  }

  start(user: AuthUser, id: string, options: RequestOptions): Promise<VmOutcome> {
    return this.act({ user, id, action: VmAction.Start, body: {}, options });
  }

  reboot(user: AuthUser, id: string, dto: RebootVmDto, options: RequestOptions): Promise<VmOutcome> {
    return this.act({ user, id, action: VmAction.Reboot, body: dto, options });
  }

  shelve(user: AuthUser, id: string, options: RequestOptions): Promise<VmOutcome> {
    return this.act({ user, id, action: VmAction.Shelve, body: {}, options });
  }

  unshelve(user: AuthUser, id: string, dto: UnshelveVmDto, options: RequestOptions): Promise<VmOutcome> {
    if (dto.wait_for_capacity_seconds !== undefined && !options.respondAsync) {
      throw new ValidationFailedError([{ field: 'wait_for_capacity_seconds', message: 'needs Prefer: respond-async (a wait for capacity answers 202 at once)' }]);
    }
    if (dto.wait_for_capacity_seconds !== undefined && dto.wait_for_capacity_seconds > this.config.maxCapacityWaitSeconds) {
      throw new ValidationFailedError([{ field: 'wait_for_capacity_seconds', message: `must not be greater than ${this.config.maxCapacityWaitSeconds} (MAX_CAPACITY_WAIT_SECONDS)` }]);
    }
    return this.act({ user, id, action: VmAction.Unshelve, body: dto, options });
  }

  resize(user: AuthUser, id: string, dto: ResizeVmDto, options: RequestOptions): Promise<VmOutcome> {
    if (dto.cpu_cores === undefined && dto.memory === undefined && dto.gpu_count === undefined) {
      throw new ValidationFailedError([{ field: 'body', message: 'must change at least one of cpu_cores, memory, gpu_count' }]);
    }
    return this.act({ user, id, action: VmAction.Resize, body: dto, options });
  }

  private async act(request: ActionRequest): Promise<VmOutcome> {
    const { user, options } = request;
    for (let attempt = 1; ; attempt++) {
      const lease = this.worker.tryReserve(this.clock.now());
      let step: ActionStep;
      try {
        step = await this.uow.transaction((tx) => this.record(tx, request, lease, attempt === 3));
      } catch (error) {
        if (lease) this.worker.unreserve();
        if (error instanceof PlacementConflictError && error.fullHostId) (request.fullHosts ??= new Set()).add(error.fullHostId);
        // A concurrent request took the VM's one open-operation slot: read the VM again (it is in flight, or busy).
        if ((error instanceof PlacementConflictError || isOpenOperationTaken(error)) && attempt < 3) continue;
        if (error instanceof PlacementConflictError) throw new InsufficientCapacityError('The capacity was taken by concurrent requests; retry', [], CAPACITY_RETRY_AFTER_SECONDS, request.id);
        throw error;
      }
      if (step.kind !== 'started' && lease) this.worker.unreserve();
      switch (step.kind) {
        case 'seen':
          return this.runner.replay(step.claim, user, options);
        case 'done':
          return { kind: 'done', status: 200, vm: toVmResponse(step.vm, viewerOf(user)), replayed: false };
        case 'queued':
          this.queue.kick();
          return this.runner.accepted(step.vm, step.op.id, user, options, false, { queuePosition: step.position });
        case 'in_flight':
          return this.runner.awaitOperation(step.op.id, step.vm, user, options, true);
        case 'refused':
          throw new InsufficientCapacityError(step.reason, step.alternatives, CAPACITY_RETRY_AFTER_SECONDS, step.vmId);
        default:
          return this.runner.dispatch(step, user, options);
      }
    }
  }

  private async record(tx: Tx, request: ActionRequest, lease: Lease | null, serialise: boolean): Promise<ActionStep> {
    const { user, id, action, body, options } = request;
    let keyId: string | null = null;
    if (options.idempotencyKey) {
      const claim = await this.idempotency.claim(tx, user.id, options.idempotencyKey, fingerprint({ action, id, body }), this.clock.now(), this.config.idempotencyTtlHours);
      if (claim.kind === 'seen') return { kind: 'seen', claim };
      keyId = claim.id;
    }
    const vm = await this.vms.findVisible(tx, id, isAdmin(user) ? null : user.id, { gpus: true, host: true });
    if (!vm) throw new NotFoundError('vm', id);
    const open = await this.ops.findOpenForVm(tx, vm.id);
    if (open) {
      if (open.action === OPERATION_OF[action]) return { kind: 'in_flight', vm, op: open };
      throw operationInProgress(open);
    }
    assertActionAllowed(action, vm.status, vm.powerState);
    const operation = OPERATION_OF[action];
    let step: ActionStep;
    if (action === VmAction.Unshelve) step = await this.recordUnshelve(tx, request, vm, lease, serialise);
    else if (action === VmAction.Resize) step = await this.recordResize(tx, request, vm, lease);
    else {
      const params = action === VmAction.Reboot ? { hard: (body as RebootVmDto).hard === true } : null;
      const op = this.runner.newOperation(operation, vm.id, user, options, lease, params);
      await this.ops.insert(tx, op);
      step = { kind: 'started', vm, op, lease };
    }
    if (keyId && 'op' in step) await this.idempotency.attach(tx, keyId, vm.id, step.op.id);
    return step;
  }

  /**
   * Places the VM again (same GPU model and region, any host that fits and
   * that nobody waiting could use), claiming its capacity now — or queues, or
   * refuses. The operation's row is written before the VM's, as everywhere.
   */
  private async recordUnshelve(tx: Tx, request: ActionRequest, vm: VmEntity, lease: Lease | null, serialise: boolean): Promise<ActionStep> {
    const placement = placementOf(vm);
    const held = this.queue.heldHosts(tx, request.fullHosts);
    const plan = await this.placement.plan(tx, placement, serialise || placement.gpuCount > 0, held);
    const waitSeconds = (request.body as UnshelveVmDto).wait_for_capacity_seconds;
    if (plan) {
      const op = this.runner.newOperation(OperationAction.Unshelve, vm.id, request.user, request.options, lease);
      await this.ops.insert(tx, op);
      await this.claim(tx, vm, { ...sizeOf(vm), hostId: plan.hostId, region: plan.region });
      Object.assign(vm, { hostId: plan.hostId, region: plan.region, releasedAt: null });
      vm.host = Object.assign(vm.host ?? {}, { id: plan.hostId, name: plan.hostName, region: plan.region }) as VmEntity['host'];
      await this.resources.claimPlacement(tx, vm, plan, placement, plan.gpus.map(() => this.ids.next()));
      await this.resources.reserveQuota(tx, vm);
      vm.allocations = plan.gpus.map((gpu) => Object.assign({ gpuId: gpu.id, vmId: vm.id, gpu, releasedAt: null }) as never);
      vm.slotClaims = slotClaimsOf(vm.id, plan);
      return { kind: 'started', vm, op, lease };
    }
    await this.placement.assertSatisfiable(tx, placement);
    const quota = await this.resources.quotaError(tx, vm.ownerId, amountsOf(vm));
    if (quota) throw quota;
    if (waitSeconds !== undefined) {
      // Waiting holds the quota, not a host: the queue places it when capacity frees.
      const op = this.runner.newOperation(OperationAction.Unshelve, vm.id, request.user, request.options, null);
      this.queue.enqueue(op, placement, waitSeconds);
      await this.ops.insert(tx, op);
      await this.claim(tx, vm, { ...sizeOf(vm), hostId: null, region: vm.region });
      await this.resources.reserveQuota(tx, vm);
      return { kind: 'queued', vm, op, position: await this.queue.position(tx, op) };
    }
    return {
      kind: 'refused',
      reason: `No host can take ${describeRequest(placement)} right now to unshelve the VM; it stays shelved`,
      alternatives: await this.placement.alternatives(tx, placement),
      vmId: vm.id,
    };
  }

  private async claim(tx: Tx, vm: VmEntity, placement: VmPlacement): Promise<void> {
    if (!(await this.vms.markClaimed(tx, vm.id, placement))) throw new ConflictError('request_in_progress', 'The VM changed while it was being unshelved; retry');
  }

  /**
   * A shelved VM holds nothing: only its record changes (its quota is checked
   * against the new size, as an unshelve will take it). A shut-off VM grows or
   * shrinks on its host: what it grows by is claimed now (host capacity, GPUs
   * of its model on that host, quota), what it shrinks by goes back when the
   * hypervisor has done it.
   */
  private async recordResize(tx: Tx, request: ActionRequest, vm: VmEntity, lease: Lease | null): Promise<ActionStep> {
    const dto = request.body as ResizeVmDto;
    if (vm.gpuProfile && dto.gpu_count !== undefined) {
      throw new ValidationFailedError([{ field: 'gpu_count', message: `the VM has the fractional GPU ${vm.gpuProfile} (gpu_profile), which a resize keeps; resize cpu_cores and memory only` }]);
    }
    const to = { cpuCores: dto.cpu_cores ?? vm.cpuCores, memory: dto.memory ?? vm.memory, gpuCount: dto.gpu_count ?? vm.gpuCount, gpuModel: vm.gpuModel };
    if (to.gpuCount === 0 && !vm.gpuProfile) to.gpuModel = null;
    if (vm.status === VmStatus.Shelved) {
      const quota = await this.resources.quotaError(tx, vm.ownerId, amountsOf({ ...to, gpuProfile: vm.gpuProfile }));
      if (quota) throw quota;
      const now = this.clock.now();
      vm.updatedAt = await this.vms.setSize(tx, vm.id, to);
      Object.assign(vm, to);
      await this.runner.recordFinished(tx, OperationAction.Resize, vm.id, request.user, request.options, now, { to });
      return { kind: 'done', vm };
    }
    if (to.gpuCount > vm.gpuCount && !vm.gpuModel) {
      throw new ValidationFailedError([{ field: 'gpu_count', message: 'a VM without GPUs gets them only while shelved (they are placed with it)' }]);
    }
    const grow = { cpuCores: Math.max(0, to.cpuCores - vm.cpuCores), memory: Math.max(0, to.memory - vm.memory), gpus: Math.max(0, to.gpuCount - vm.gpuCount) };
    const shrink = { cpuCores: Math.max(0, vm.cpuCores - to.cpuCores), memory: Math.max(0, vm.memory - to.memory), gpus: Math.max(0, vm.gpuCount - to.gpuCount) };
    const plan: ResizePlan = { to, grow, shrink, addedGpus: [], removedGpuIds: [] };
    if (grow.cpuCores > 0 || grow.memory > 0) {
      if (!(await this.fleet.claimHost(tx, vm.hostId!, { cpuCores: grow.cpuCores, memoryMib: grow.memory, diskGib: 0 }))) throw this.doesNotFit(vm, 'vCPUs or memory');
    }
    if (grow.gpus > 0) {
      const free = await this.fleet.freeGpusOnHost(tx, vm.hostId!, vm.gpuModel!, grow.gpus);
      if (free.length < grow.gpus || (await this.fleet.bindGpus(tx, vm.id, vm.hostId!, free.map((g) => g.id))) !== grow.gpus) throw this.doesNotFit(vm, `${vm.gpuModel} GPUs`);
      await this.fleet.insertAllocations(tx, free.map((g) => ({ id: this.ids.next(), gpuId: g.id, vmId: vm.id })));
      plan.addedGpus = free.map((g) => ({ id: g.id, uuid: g.uuid, pciAddress: g.pciAddress }));
      await this.usage.record(tx, { ...vm, gpuCount: grow.gpus }, this.clock.now(), UsageEventKind.GpuClaim);
    }
    if (shrink.gpus > 0) {
      const held = (vm.allocations ?? []).filter((a) => a.releasedAt === null).sort((a, b) => b.gpu!.index - a.gpu!.index);
      plan.removedGpuIds = held.slice(0, shrink.gpus).map((a) => a.gpuId);
    }
    if (grow.cpuCores > 0 || grow.memory > 0 || grow.gpus > 0) {
      const delta = { vcpus: grow.cpuCores, memoryMib: grow.memory, gpuMilli: grow.gpus * 1000, vms: 0 };
      if (!(await this.users.tryConsume(tx, vm.ownerId, delta, this.config.quotaDefaults))) {
        throw (await this.resources.quotaError(tx, vm.ownerId, delta)) ?? new ConflictError('request_in_progress', 'Quota changed meanwhile; retry');
      }
    }
    const op = this.runner.newOperation(OperationAction.Resize, vm.id, request.user, request.options, lease, plan as unknown as Record<string, unknown>);
    await this.ops.insert(tx, op);
    return { kind: 'started', vm, op, lease };
  }

  private doesNotFit(vm: VmEntity, what: string): ConflictError {
    return new ConflictError('resize_does_not_fit', `The VM's host ${vm.host?.name ?? ''} has not enough free ${what} for the new size; shelve the VM and resize it, and it is placed wherever it fits`.replace('host  has', 'host has'));
  }
}

function sizeOf(vm: VmEntity): Pick<VmEntity, 'cpuCores' | 'memory' | 'gpuCount' | 'gpuModel'> {
  return { cpuCores: vm.cpuCores, memory: vm.memory, gpuCount: vm.gpuCount, gpuModel: vm.gpuModel };
}

/** What a shelved VM asks of the scheduler: its size, its GPU model, its region. */
function placementOf(vm: VmEntity): PlacementRequest {
  return { cpuCores: vm.cpuCores, memoryMib: vm.memory, diskGib: vm.diskSize, gpuCount: vm.gpuCount, gpuProfile: vm.gpuProfile, gpuModel: vm.gpuModel, region: vm.region };
}
