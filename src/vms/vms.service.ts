import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { Clock } from '../common/clock';
import { decodeCursor, toPage } from '../common/cursor';
import {
  CapacityAlternative,
  ConflictError,
  InsufficientCapacityError,
  NotFoundError,
  ValidationFailedError,
} from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { constraintViolation } from '../database/constraint-violation';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { HostEntity } from '../fleet/host.entity';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { PlacementConflictError, PlacementPlan, PlacementService } from '../fleet/placement.service';
import { IdempotencyRepository, KeyClaim, fingerprint } from '../idempotency/idempotency.repository';
import { OperationPageDto } from '../operations/dto/operation.dto';
import { OperationAction, OperationEntity, OperationStatus, isFinished } from '../operations/operation.entity';
import { toOperationResponse } from '../operations/operation.mapper';
import { OperationWaiter } from '../operations/operation-waiter';
import { Lease, OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { CreateVmDto } from './dto/create-vm.dto';
import { ListVmsQueryDto } from './dto/list-vms.query';
import { VmPageDto, VmResponseDto } from './dto/vm-response.dto';
import { VmEntity, VmStatus } from './vm.entity';
import { VmViewer, toVmResponse } from './vm.mapper';
import { CAPACITY_RETRY_AFTER_SECONDS, OperationResult, VmOutcome, errorFromOperation } from './vm-outcome';
import { ProvisionContext } from './vm-provisioner';
import { VmResources, amountsOf } from './vm-resources.service';
import { VmEvent, assertAllowed } from './vm-state-machine';
import { VmsRepository } from './vms.repository';

export interface RequestOptions {
  /** Prefer: respond-async */
  respondAsync: boolean;
  /** Prefer: wait=N, in seconds */
  waitSeconds: number | null;
  idempotencyKey: string | null;
  requestId: string | null;
}

/** How often one request re-plans after losing a placement race before giving up. */
const MAX_PLACEMENT_ATTEMPTS = 3;
/** How often a delete re-reads a VM whose status changed under it. */
const MAX_DELETE_ATTEMPTS = 3;
const DEFAULT_PAGE_SIZE = 50;

/** One create request, as the steps of recording it need it. */
interface CreateRequest {
  user: AuthUser;
  dto: CreateVmDto;
  placement: PlacementRequest;
  /** The body's fingerprint, when the request carries an Idempotency-Key. */
  hash: string | null;
  options: RequestOptions;
}

type Started = { kind: 'started'; vm: VmEntity; op: OperationEntity; lease: Lease | null };
type CreateStep =
  | Started
  | { kind: 'refused'; vm: VmEntity; alternatives: CapacityAlternative[] }
  | { kind: 'seen'; claim: Extract<KeyClaim, { kind: 'seen' }> };
type DeleteStep = Started | { kind: 'done'; vm: VmEntity } | { kind: 'in_flight'; vm: VmEntity; op: OperationEntity | null };

/** A conditional status change lost to a concurrent one; the request reads the VM again. */
class LostRace extends Error {}

@Injectable()
export class VmsService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly placement: PlacementService,
    private readonly resources: VmResources,
    private readonly idempotency: IdempotencyRepository,
    private readonly worker: OperationWorker,
    private readonly waiter: OperationWaiter,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  /**
   * Records the VM (provisioning), its placement and its create operation in
   * one transaction, then runs the operation and waits for it up to the
   * caller's bound.
   */
  async create(user: AuthUser, dto: CreateVmDto, options: RequestOptions): Promise<VmOutcome> {
    const request: CreateRequest = {
      user,
      dto,
      placement: placementRequestOf(dto),
      hash: options.idempotencyKey ? fingerprint(dto) : null,
      options,
    };
    for (let attempt = 1; ; attempt++) {
      // GPU placements are serialised (identical requests would all pick the same best GPUs); CPU-only ones
      // claim optimistically and are serialised only on their last attempt after losing races.
      const serialise = request.placement.gpuCount > 0 || attempt === MAX_PLACEMENT_ATTEMPTS;
      const lease = this.worker.tryReserve(this.clock.now());
      let step: CreateStep;
      try {
        step = await this.uow.transaction((tx) => this.recordCreate(tx, request, serialise, lease));
      } catch (error) {
        if (lease) this.worker.unreserve();
        if (error instanceof PlacementConflictError) {
          if (attempt < MAX_PLACEMENT_ATTEMPTS) continue;
          throw new InsufficientCapacityError(
            `The capacity for ${describeRequest(request.placement)} was taken by concurrent requests; retry`,
            [],
            CAPACITY_RETRY_AFTER_SECONDS,
          );
        }
        throw translateConstraint(error, dto);
      }
      if (step.kind !== 'started' && lease) this.worker.unreserve();
      if (step.kind === 'seen') return this.replayCreate(step.claim, user, options);
      if (step.kind === 'refused') {
        throw new InsufficientCapacityError(
          `No host can take ${describeRequest(request.placement)} right now`,
          step.alternatives,
          CAPACITY_RETRY_AFTER_SECONDS,
          step.vm.id,
        );
      }
      return this.dispatch(step, user, options);
    }
  }

  async delete(user: AuthUser, id: string, options: RequestOptions): Promise<VmOutcome> {
    for (let attempt = 1; ; attempt++) {
      const lease = this.worker.tryReserve(this.clock.now());
      let step: DeleteStep;
      try {
        step = await this.uow.transaction((tx) => this.recordDelete(tx, user, id, options, lease));
      } catch (error) {
        if (lease) this.worker.unreserve();
        if (error instanceof LostRace && attempt < MAX_DELETE_ATTEMPTS) continue;
        if (error instanceof LostRace) throw new ConflictError('request_in_progress', 'The VM keeps changing while it is being deleted; retry');
        throw error;
      }
      if (step.kind !== 'started' && lease) this.worker.unreserve();
      if (step.kind === 'done') return { kind: 'done', status: 200, vm: toVmResponse(step.vm, viewerOf(user)), replayed: false };
      if (step.kind === 'in_flight') {
        // Deleting with no open operation: it finished between the two reads (read again), or the reconciler will queue one.
        if (!step.op && attempt < MAX_DELETE_ATTEMPTS) continue;
        if (!step.op) return this.accepted(step.vm, '', user, options, true);
        return this.awaitOperation(step.op.id, step.vm, user, options, true);
      }
      return this.dispatch(step, user, options);
    }
  }

  async get(user: AuthUser, id: string): Promise<VmResponseDto> {
    const vm = await this.uow.read((tx) => this.findVisible(tx, user, id));
    if (!vm) throw new NotFoundError('vm', id);
    return toVmResponse(vm, viewerOf(user));
  }

  async list(user: AuthUser, query: ListVmsQueryDto): Promise<VmPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const filter = {
      ownerId: isAdmin(user) ? null : user.id,
      status: query.status ?? null,
      label: query.label ?? null,
      beforeId: decodeCursor(query.cursor),
      limit: limit + 1,
    };
    const rows = await this.uow.read((tx) => this.vms.list(tx, filter, { gpus: true, host: isAdmin(user) }));
    const viewer = viewerOf(user);
    return toPage(rows, limit, (vm) => toVmResponse(vm, viewer));
  }

  async operations(user: AuthUser, vmId: string, limit = DEFAULT_PAGE_SIZE, cursor?: string): Promise<OperationPageDto> {
    const rows = await this.uow.read(async (tx) => {
      const owner = await this.vms.ownerOf(tx, vmId);
      if (!owner || (owner !== user.id && !isAdmin(user))) throw new NotFoundError('vm', vmId);
      return this.ops.listByVm(tx, vmId, decodeCursor(cursor), limit + 1);
    });
    return toPage(rows, limit, toOperationResponse);
  }

  /** The intent of a create, in one transaction: each step below either ends it or hands on. */
  private async recordCreate(tx: Tx, request: CreateRequest, serialise: boolean, lease: Lease | null): Promise<CreateStep> {
    const key = await this.claimIdempotencyKey(tx, request);
    if (key?.kind === 'seen') return { kind: 'seen', claim: key };
    await this.assertPublicIpFree(tx, request.dto.public_ip);
    const plan = await this.placement.plan(tx, request.placement, serialise);
    if (!plan) return this.recordRefusal(tx, request, key?.id ?? null);
    return this.recordPlaced(tx, request, plan, key?.id ?? null, lease);
  }

  private async claimIdempotencyKey(tx: Tx, request: CreateRequest): Promise<KeyClaim | null> {
    const { options, hash, user } = request;
    if (!options.idempotencyKey || !hash) return null;
    return this.idempotency.claim(tx, user.id, options.idempotencyKey, hash, this.clock.now(), this.config.idempotencyTtlHours);
  }

  private async assertPublicIpFree(tx: Tx, publicIp: string | null | undefined): Promise<void> {
    if (publicIp && (await this.vms.publicIpInUse(tx, publicIp))) throw publicIpInUse(publicIp);
  }

  /**
   * The VM row, its create operation and the idempotency key first; the
   * contended rows (the host's counters, its GPUs, the user's usage) last, so
   * other creates and deletes on this host or by this user wait for the fewest
   * round trips before COMMIT.
   */
  private async recordPlaced(tx: Tx, request: CreateRequest, plan: PlacementPlan, keyId: string | null, lease: Lease | null): Promise<Started> {
    const vm = this.newVm(request, plan);
    await this.vms.insert(tx, vm);
    const op = this.newOperation(OperationAction.Create, vm.id, request, lease);
    await this.ops.insert(tx, op);
    if (keyId) await this.idempotency.attach(tx, keyId, vm.id, op.id);
    await this.resources.claim(tx, vm, plan, request.placement, plan.gpus.map(() => this.ids.next()));
    return { kind: 'started', vm, op, lease };
  }

  /**
   * Nothing fits now. A request no host could ever hold is a 422 and leaves no
   * record; over quota is the more useful answer when both apply; otherwise a
   * failed VM and operation say why (the VM is listed only with status=failed).
   */
  private async recordRefusal(tx: Tx, request: CreateRequest, keyId: string | null): Promise<CreateStep> {
    const { dto, placement } = request;
    await this.placement.assertSatisfiable(tx, placement);
    const quotaProblem = await this.resources.quotaError(tx, request.user.id, amountsOf({ cpuCores: dto.cpu_cores, memory: dto.memory, gpuCount: placement.gpuCount }));
    if (quotaProblem) throw quotaProblem;
    const alternatives = await this.placement.alternatives(tx, placement);
    const now = this.clock.now();
    const reason = `insufficient capacity: no active host has room for ${describeRequest(placement)}`;
    const vm = Object.assign(this.newVm(request, null), { status: VmStatus.Failed, statusReason: reason, releasedAt: now, publicIp: null });
    await this.vms.insert(tx, vm);
    const op = this.newOperation(OperationAction.Create, vm.id, request, null);
    Object.assign(op, { status: OperationStatus.Failed, stage: 'done', errorCode: 'insufficient_capacity', errorMessage: reason, finishedAt: now });
    await this.ops.insert(tx, op);
    if (keyId) {
      await this.idempotency.attach(tx, keyId, vm.id, op.id);
      // A capacity refusal is worth retrying with the same key, so it is not replayed.
      await this.idempotency.forget(tx, op.id);
    }
    return { kind: 'refused', vm, alternatives };
  }

  private async recordDelete(tx: Tx, user: AuthUser, id: string, options: RequestOptions, lease: Lease | null): Promise<DeleteStep> {
    const vm = await this.findVisible(tx, user, id);
    if (!vm) throw new NotFoundError('vm', id);
    if (vm.status === VmStatus.Deleted) return { kind: 'done', vm };
    if (vm.status === VmStatus.Deleting) return { kind: 'in_flight', vm, op: await this.ops.findOpenForVm(tx, vm.id) };
    if (vm.status === VmStatus.Failed && vm.releasedAt) return this.deleteRecordOnly(tx, vm, user, options);
    assertAllowed(vm.status, VmEvent.DeleteRequested, 'delete');
    const moved = await this.vms.transition(tx, vm.id, VmEvent.DeleteRequested);
    if (!moved.applied) throw new LostRace();
    Object.assign(vm, { status: VmStatus.Deleting, updatedAt: moved.updatedAt });
    const op = this.newOperation(OperationAction.Delete, vm.id, { user, options }, lease);
    await this.ops.insert(tx, op);
    return { kind: 'started', vm, op, lease };
  }

  /** A failed VM that holds nothing on the hypervisor: deleting it is only a record change. */
  private async deleteRecordOnly(tx: Tx, vm: VmEntity, user: AuthUser, options: RequestOptions): Promise<DeleteStep> {
    const now = this.clock.now();
    const moved = await this.vms.transition(tx, vm.id, VmEvent.RecordDeleted, { deletedAt: now });
    if (!moved.applied) throw new LostRace();
    const op = this.newOperation(OperationAction.Delete, vm.id, { user, options }, null);
    Object.assign(op, { status: OperationStatus.Succeeded, stage: 'done', finishedAt: now });
    await this.ops.insert(tx, op);
    return { kind: 'done', vm: Object.assign(vm, { status: VmStatus.Deleted, deletedAt: now, updatedAt: moved.updatedAt }) };
  }

  private findVisible(tx: Tx, user: AuthUser, id: string): Promise<VmEntity | null> {
    return this.vms.findVisible(tx, id, isAdmin(user) ? null : user.id, { gpus: true, host: isAdmin(user) });
  }

  private async dispatch(step: Started, user: AuthUser, options: RequestOptions): Promise<VmOutcome> {
    if (step.lease) {
      const context: ProvisionContext = { vm: step.vm, idempotent: options.idempotencyKey !== null, viewer: viewerOf(user) };
      this.worker.start(step.op, context);
    } else this.worker.kick();
    if (options.respondAsync) return this.accepted(step.vm, step.op.id, user, options, false);
    return this.awaitOperation(step.op.id, step.vm, user, options, false);
  }

  private async awaitOperation(operationId: string, vm: VmEntity, user: AuthUser, options: RequestOptions, replayed: boolean): Promise<VmOutcome> {
    if (options.respondAsync) return this.accepted(vm, operationId, user, options, replayed);
    const waitMs = 1000 * Math.min(options.waitSeconds ?? this.config.defaultWaitSeconds, this.config.maxWaitSeconds);
    const result = await this.waiter.wait<OperationResult>(operationId, waitMs, () => this.resultFromDatabase(operationId));
    if (!result) {
      const current = await this.uow.read((tx) => this.findVisible(tx, user, vm.id));
      return this.accepted(current ?? vm, operationId, user, options, replayed);
    }
    if (result.kind === 'succeeded') return { kind: 'done', status: result.status, vm: toVmResponse(result.vm, viewerOf(user)), replayed };
    throw result.error;
  }

  private accepted(vm: VmEntity, operationId: string, user: AuthUser, options: RequestOptions, replayed: boolean): VmOutcome {
    return { kind: 'accepted', vm: toVmResponse(vm, viewerOf(user)), operationId, asyncRequested: options.respondAsync, replayed };
  }

  /** The outcome of an operation finished by another process, or null while it runs. */
  private async resultFromDatabase(operationId: string): Promise<OperationResult | null> {
    return this.uow.read(async (tx) => {
      const op = await this.ops.findById(tx, operationId);
      if (!op || !isFinished(op)) return null;
      if (op.status === OperationStatus.Failed) {
        return { kind: 'failed', error: errorFromOperation(op.errorCode, op.errorMessage, op.vmId) };
      }
      const vm = await this.vms.findById(tx, op.vmId!, { gpus: true, host: true });
      return { kind: 'succeeded', status: op.action === OperationAction.Create ? 201 : 200, vm: vm! };
    });
  }

  /** A repeated Idempotency-Key: replay the stored response, or follow the first request's operation. */
  private async replayCreate(claim: Extract<KeyClaim, { kind: 'seen' }>, user: AuthUser, options: RequestOptions): Promise<VmOutcome> {
    if (claim.responseStatus === 201 && claim.responseBody) {
      return { kind: 'done', status: 201, vm: JSON.parse(claim.responseBody) as VmResponseDto, replayed: true };
    }
    if (!claim.operationId || !claim.vmId) {
      throw new ConflictError('request_in_progress', 'A request with this Idempotency-Key is still being processed');
    }
    const { op, vm } = await this.uow.read(async (tx) => ({
      op: await this.ops.findById(tx, claim.operationId!),
      vm: await this.findVisible(tx, user, claim.vmId!),
    }));
    if (op && op.status === OperationStatus.Failed) throw errorFromOperation(op.errorCode, op.errorMessage, op.vmId);
    if (op && op.status === OperationStatus.Succeeded && vm) {
      return { kind: 'done', status: 201, vm: toVmResponse(vm, viewerOf(user)), replayed: true };
    }
    return this.awaitOperation(claim.operationId, vm!, user, options, true);
  }

  /** The VM as recorded at admission: provisioning on the plan's host, or (no plan) not placed anywhere. */
  private newVm({ user, dto, placement }: CreateRequest, plan: PlacementPlan | null): VmEntity {
    const id = this.ids.next();
    return Object.assign(new VmEntity(), {
      id,
      ownerId: user.id,
      name: dto.name,
      cpuCores: dto.cpu_cores,
      memory: dto.memory,
      diskSize: dto.disk_size,
      publicIp: dto.public_ip ?? null,
      labels: dto.labels ?? [],
      status: VmStatus.Provisioning,
      statusReason: null,
      hostId: plan?.hostId ?? null,
      host: plan ? Object.assign(new HostEntity(), { id: plan.hostId, name: plan.hostName, region: plan.region }) : null,
      region: plan?.region ?? null,
      gpuCount: placement.gpuCount,
      gpuModel: plan?.gpus[0]?.model ?? placement.gpuModel ?? null,
      allocations: (plan?.gpus ?? []).map((gpu) => Object.assign(new GpuAllocationEntity(), { gpuId: gpu.id, vmId: id, gpu })),
      hypervisorId: null,
      releasedAt: null,
      deletedAt: null,
    });
  }

  /** A new operation; with a worker lease it starts running here at once, otherwise it waits as pending. */
  private newOperation(
    action: OperationAction,
    vmId: string,
    { user, options }: Pick<CreateRequest, 'user' | 'options'>,
    lease: Lease | null,
  ): OperationEntity {
    const now = this.clock.now();
    return Object.assign(new OperationEntity(), {
      id: this.ids.next(),
      vmId,
      action,
      status: lease ? OperationStatus.Running : OperationStatus.Pending,
      stage: lease ? 'calling_hypervisor' : 'queued',
      attempts: lease ? 1 : 0,
      errorCode: null,
      errorMessage: null,
      userId: user.id,
      hypervisorVmId: null,
      requestId: options.requestId,
      leaseOwner: lease?.owner ?? null,
      leaseExpiresAt: lease?.expiresAt ?? null,
      startedAt: lease ? now : null,
      finishedAt: null,
    });
  }
}

export function viewerOf(user: AuthUser): VmViewer {
  return { seesFleet: isAdmin(user) };
}

function placementRequestOf(dto: CreateVmDto): PlacementRequest {
  const gpuCount = dto.gpu_count ?? 0;
  if (dto.gpu_model && gpuCount === 0) {
    throw new ValidationFailedError([{ field: 'gpu_model', message: 'needs gpu_count of at least 1' }]);
  }
  return {
    cpuCores: dto.cpu_cores,
    memoryMib: dto.memory,
    diskGib: dto.disk_size,
    gpuCount,
    gpuModel: dto.gpu_model ?? null,
    region: dto.region ?? null,
  };
}

function publicIpInUse(publicIp: string | null | undefined): ConflictError {
  return new ConflictError('public_ip_in_use', `The public IP ${publicIp} is used by another live VM`, { field: 'public_ip' });
}

function translateConstraint(error: unknown, dto: CreateVmDto): unknown {
  const violation = constraintViolation(error);
  if (violation?.kind === 'unique' && /public_ip/.test(violation.target)) return publicIpInUse(dto.public_ip);
  return error;
}

function describeRequest(request: PlacementRequest): string {
  const gpus = request.gpuCount > 0 ? ` with ${request.gpuCount}× ${request.gpuModel ?? 'any GPU'}` : '';
  const region = request.region ? ` in ${request.region}` : '';
  return `${request.cpuCores} vCPU / ${request.memoryMib} MiB / ${request.diskGib} GiB${gpus}${region}`;
}
