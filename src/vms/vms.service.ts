import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { Clock, laterThan } from '../common/clock';
import { decodeCursor, toPage } from '../common/cursor';
import {
  CapacityAlternative,
  ConflictError,
  DomainError,
  InsufficientCapacityError,
  NotFoundError,
  QuotaExceededError,
  ValidationFailedError,
} from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { constraintViolation } from '../database/sql-dialect';
import { FleetRepository } from '../fleet/fleet.repository';
import { PlacementConflictError, PlacementService } from '../fleet/placement.service';
import { IdempotencyRepository, KeyClaim, fingerprint } from '../idempotency/idempotency.repository';
import { OperationPageDto } from '../operations/dto/operation.dto';
import { OperationAction, OperationStatus } from '../operations/operation.entity';
import { toOperationResponse } from '../operations/operation.mapper';
import { OperationRecord, isFinished } from '../operations/operation-record';
import { OperationWaiter } from '../operations/operation-waiter';
import { Lease, OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { effectiveQuota } from '../users/user.mapper';
import { ResourceAmounts, UsersRepository } from '../users/users.repository';
import { CreateVmDto } from './dto/create-vm.dto';
import { ListVmsQueryDto } from './dto/list-vms.query';
import { VmPageDto, VmResponseDto } from './dto/vm-response.dto';
import { VmStatus } from './vm.entity';
import { toVmResponse } from './vm.mapper';
import { CAPACITY_RETRY_AFTER_SECONDS, OperationResult, VmOutcome, errorFromOperation } from './vm-outcome';
import { ProvisionContext, VmProvisioner } from './vm-provisioner';
import { assertTransition } from './vm-state-machine';
import type { VmView } from './vm-view';
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
const DEFAULT_PAGE_SIZE = 50;

type Started = { kind: 'started'; vm: VmView; op: OperationRecord; lease: Lease | null };
type LeaseHolder = { lease: Lease | null };
type CreateStep =
  | Started
  | { kind: 'refused'; vm: VmView; alternatives: CapacityAlternative[] }
  | { kind: 'seen'; claim: Extract<KeyClaim, { kind: 'seen' }> };
type DeleteStep = Started | { kind: 'done'; vm: VmView } | { kind: 'in_flight'; vm: VmView; op: OperationRecord | null };

@Injectable()
export class VmsService {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly users: UsersRepository,
    private readonly placement: PlacementService,
    private readonly fleet: FleetRepository,
    private readonly provisioner: VmProvisioner,
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
    const gpuCount = dto.gpu_count ?? 0;
    if (dto.gpu_model && gpuCount === 0) {
      throw new ValidationFailedError([{ field: 'gpu_model', message: 'needs gpu_count of at least 1' }]);
    }
    const request: PlacementRequest = {
      cpuCores: dto.cpu_cores,
      memoryMib: dto.memory,
      diskGib: dto.disk_size,
      gpuCount,
      gpuModel: dto.gpu_model ?? null,
      region: dto.region ?? null,
    };
    const hash = options.idempotencyKey ? fingerprint(dto) : null;

    for (let attempt = 1; ; attempt++) {
      const reserved: LeaseHolder = { lease: null };
      let step: CreateStep;
      // GPU placements are serialised (identical requests would all pick the same best GPUs); CPU-only ones
      // claim optimistically and are serialised only on their last attempt after losing races.
      const serialise = request.gpuCount > 0 || attempt === MAX_PLACEMENT_ATTEMPTS;
      try {
        step = await this.uow.transaction((tx) => this.recordCreate(tx, user, dto, request, hash, options, serialise, reserved));
      } catch (error) {
        if (reserved.lease) this.worker.unreserve();
        if (error instanceof PlacementConflictError) {
          if (attempt < MAX_PLACEMENT_ATTEMPTS) continue;
          throw new InsufficientCapacityError(
            `The capacity for ${describeRequest(request)} was taken by concurrent requests; retry`,
            [],
            CAPACITY_RETRY_AFTER_SECONDS,
          );
        }
        throw this.translateConstraint(error, dto);
      }
      if (step.kind === 'seen') return this.replayCreate(step.claim, options);
      if (step.kind === 'refused') {
        throw new InsufficientCapacityError(
          `No host can take ${describeRequest(request)} right now`,
          step.alternatives,
          CAPACITY_RETRY_AFTER_SECONDS,
          step.vm.id,
        );
      }
      return this.dispatch(step, options);
    }
  }

  async delete(user: AuthUser, id: string, options: RequestOptions): Promise<VmOutcome> {
    const reserved: LeaseHolder = { lease: null };
    let step: DeleteStep;
    try {
      step = await this.uow.transaction((tx) => this.recordDelete(tx, user, id, options, reserved));
    } catch (error) {
      if (reserved.lease) this.worker.unreserve();
      throw error;
    }
    if (step.kind === 'done') return { kind: 'done', status: 200, vm: toVmResponse(step.vm), replayed: false };
    if (step.kind === 'in_flight') {
      if (!step.op) return this.accepted(step.vm, '', options, true);
      return this.awaitOperation(step.op.id, step.vm, options, true);
    }
    return this.dispatch(step, options);
  }

  async get(user: AuthUser, id: string): Promise<VmResponseDto> {
    const vm = await this.uow.read(async (tx) => {
      const found = await this.provisioner.loadVm(tx, id);
      return found && (found.ownerId === user.id || isAdmin(user)) ? found : null;
    });
    if (!vm) throw new NotFoundError('vm', id);
    return toVmResponse(vm);
  }

  async list(user: AuthUser, query: ListVmsQueryDto): Promise<VmPageDto> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const rows = await this.uow.read(async (tx) => {
      const found = await this.vms.list(tx, {
        ownerId: isAdmin(user) ? null : user.id,
        status: query.status ?? null,
        label: query.label ?? null,
        beforeId: decodeCursor(query.cursor),
        limit: limit + 1,
      });
      const withGpus = found.filter((vm) => vm.gpuCount > 0).map((vm) => vm.id);
      if (withGpus.length > 0) {
        const gpus = await this.fleet.gpusOfVms(tx, withGpus);
        for (const vm of found) vm.gpus = gpus.get(vm.id);
      }
      return found;
    });
    return toPage(rows, limit, toVmResponse);
  }

  async operations(user: AuthUser, vmId: string, limit = DEFAULT_PAGE_SIZE, cursor?: string): Promise<OperationPageDto> {
    const rows = await this.uow.read(async (tx) => {
      const vm = await this.vms.findById(tx, vmId);
      if (!vm || (vm.ownerId !== user.id && !isAdmin(user))) throw new NotFoundError('vm', vmId);
      return this.ops.listByVm(tx, vmId, decodeCursor(cursor), limit + 1);
    });
    return toPage(rows, limit, toOperationResponse);
  }

  /**
   * The intent of a create, in one transaction. Statement order matters on
   * PostgreSQL: the rows every create and delete touch (the host's counters,
   * its GPUs, the user's usage) are locked last — hosts, then GPUs, then the
   * user, the same order releases use — so they are held for the fewest round
   * trips before COMMIT and no two transactions wait on each other in a cycle.
   */
  private async recordCreate(
    tx: Tx,
    user: AuthUser,
    dto: CreateVmDto,
    request: PlacementRequest,
    hash: string | null,
    options: RequestOptions,
    serialise: boolean,
    reserved: LeaseHolder,
  ): Promise<CreateStep> {
    const now = this.clock.now();
    let keyId: string | null = null;
    if (options.idempotencyKey && hash) {
      const claim = await this.idempotency.claim(tx, user.id, options.idempotencyKey, hash, now, this.config.idempotencyTtlHours);
      if (claim.kind === 'seen') return { kind: 'seen', claim };
      keyId = claim.id;
    }
    if (dto.public_ip && (await this.vms.publicIpInUse(tx, dto.public_ip))) {
      throw new ConflictError('public_ip_in_use', `The public IP ${dto.public_ip} is used by another live VM`, { field: 'public_ip' });
    }
    const amounts: ResourceAmounts = { vcpus: request.cpuCores, memoryMib: request.memoryMib, gpus: request.gpuCount, vms: 1 };

    const vm: VmView = {
      id: this.ids.next(),
      ownerId: user.id,
      name: dto.name,
      cpuCores: dto.cpu_cores,
      memory: dto.memory,
      diskSize: dto.disk_size,
      publicIp: dto.public_ip ?? null,
      labels: dto.labels ?? [],
      status: VmStatus.Provisioning,
      statusReason: null,
      hostId: null,
      hostName: null,
      region: null,
      gpuCount: request.gpuCount,
      gpuModel: request.gpuModel ?? null,
      hypervisorId: null,
      releasedAt: null,
      deletedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    const op = this.newOperation(OperationAction.Create, vm.id, user.id, options.requestId, now);

    const plan = await this.placement.plan(tx, request, serialise);
    if (!plan) {
      // Over quota is the more useful answer when both apply.
      const quotaProblem = await this.quotaError(tx, user.id, amounts);
      if (quotaProblem) throw quotaProblem;
      // Refusals are recorded too: a failed VM and a failed operation saying why.
      const alternatives = await this.placement.alternatives(tx, request);
      vm.status = VmStatus.Failed;
      vm.statusReason = `insufficient capacity: no active host has room for ${describeRequest(request)}`;
      vm.releasedAt = now;
      vm.publicIp = null;
      await this.vms.insert(tx, vm);
      op.status = OperationStatus.Failed;
      op.stage = 'done';
      op.errorCode = 'insufficient_capacity';
      op.errorMessage = vm.statusReason;
      op.finishedAt = now;
      await this.ops.insert(tx, op);
      if (keyId) await this.idempotency.attach(tx, keyId, vm.id, op.id).then(() => this.idempotency.forget(tx, op.id));
      return { kind: 'refused', vm, alternatives };
    }

    vm.hostId = plan.hostId;
    vm.hostName = plan.hostName;
    vm.region = plan.region;
    vm.gpuModel = plan.gpus[0]?.model ?? null;
    vm.gpus = plan.gpus;
    await this.vms.insert(tx, vm);
    const lease = this.startOrQueue(op, now, reserved);
    await this.ops.insert(tx, op);
    if (keyId) await this.idempotency.attach(tx, keyId, vm.id, op.id);
    // The contended rows last: from here to COMMIT other creates and deletes on this host or by this user wait.
    await this.placement.claim(tx, vm.id, plan, request, plan.gpus.map(() => this.ids.next()), now);
    if (!(await this.users.tryConsume(tx, user.id, amounts, this.config.quotaDefaults, now))) {
      throw (await this.quotaError(tx, user.id, amounts)) ?? new ConflictError('request_in_progress', 'Quota changed meanwhile; retry');
    }
    return { kind: 'started', vm, op, lease };
  }

  private async recordDelete(tx: Tx, user: AuthUser, id: string, options: RequestOptions, reserved: LeaseHolder): Promise<DeleteStep> {
    const vm = await this.provisioner.loadVm(tx, id);
    if (!vm || (vm.ownerId !== user.id && !isAdmin(user))) throw new NotFoundError('vm', id);
    const now = this.clock.now();
    switch (vm.status) {
      case VmStatus.Deleted:
        return { kind: 'done', vm };
      case VmStatus.Deleting:
        return { kind: 'in_flight', vm, op: await this.ops.findOpenForVm(tx, vm.id) };
      case VmStatus.Failed:
        if (vm.releasedAt) return this.deleteRecordOnly(tx, vm, user, options, now);
        break;
      default:
        assertTransition(vm.status, VmStatus.Deleting, 'delete');
    }
    const updatedAt = laterThan(now, vm.updatedAt);
    await this.vms.transition(tx, vm.id, [vm.status], { status: VmStatus.Deleting }, updatedAt);
    const deleting: VmView = { ...vm, status: VmStatus.Deleting, updatedAt };
    const op = this.newOperation(OperationAction.Delete, vm.id, user.id, options.requestId, now);
    const lease = this.startOrQueue(op, now, reserved);
    await this.ops.insert(tx, op);
    return { kind: 'started', vm: deleting, op, lease };
  }

  /** A failed VM that holds nothing on the hypervisor: deleting it is only a record change. */
  private async deleteRecordOnly(tx: Tx, vm: VmView, user: AuthUser, options: RequestOptions, now: Date): Promise<DeleteStep> {
    const updatedAt = laterThan(now, vm.updatedAt);
    await this.vms.transition(tx, vm.id, [VmStatus.Failed], { status: VmStatus.Deleted, deletedAt: now }, updatedAt);
    const op = this.newOperation(OperationAction.Delete, vm.id, user.id, options.requestId, now);
    op.status = OperationStatus.Succeeded;
    op.stage = 'done';
    op.finishedAt = now;
    await this.ops.insert(tx, op);
    return { kind: 'done', vm: { ...vm, status: VmStatus.Deleted, deletedAt: now, updatedAt } };
  }

  /**
   * Starts the operation in this process if a worker slot is free now; otherwise it waits as pending.
   * The slot is noted in `reserved` at once, so the caller can give it back if the transaction fails.
   */
  private startOrQueue(op: OperationRecord, now: Date, reserved: LeaseHolder): Lease | null {
    const lease = this.worker.tryReserve(now);
    reserved.lease = lease;
    if (lease) {
      op.status = OperationStatus.Running;
      op.stage = 'calling_hypervisor';
      op.attempts = 1;
      op.leaseOwner = lease.owner;
      op.leaseExpiresAt = lease.expiresAt;
      op.startedAt = now;
    }
    return lease;
  }

  private async dispatch(step: Started, options: RequestOptions): Promise<VmOutcome> {
    if (step.lease) this.worker.start(step.op, { vm: step.vm, idempotent: options.idempotencyKey !== null } satisfies ProvisionContext);
    else this.worker.kick();
    if (options.respondAsync) return this.accepted(step.vm, step.op.id, options, false);
    return this.awaitOperation(step.op.id, step.vm, options, false);
  }

  private async awaitOperation(
    operationId: string,
    vm: VmView,
    options: RequestOptions,
    replayed: boolean,
  ): Promise<VmOutcome> {
    if (options.respondAsync) return this.accepted(vm, operationId, options, replayed);
    const waitMs = 1000 * Math.min(options.waitSeconds ?? this.config.defaultWaitSeconds, this.config.maxWaitSeconds);
    const result = await this.waiter.wait<OperationResult>(operationId, waitMs, () => this.resultFromDatabase(operationId));
    if (!result) {
      const current = await this.uow.read((tx) => this.provisioner.loadVm(tx, vm.id));
      return this.accepted(current ?? vm, operationId, options, replayed);
    }
    if (result.kind === 'succeeded') return { kind: 'done', status: result.status, vm: result.vm, replayed };
    throw result.error;
  }

  private accepted(vm: VmView, operationId: string, options: RequestOptions, replayed: boolean): VmOutcome {
    return { kind: 'accepted', vm: toVmResponse(vm), operationId, asyncRequested: options.respondAsync, replayed };
  }

  /** The outcome of an operation finished by another process, or null while it runs. */
  private async resultFromDatabase(operationId: string): Promise<OperationResult | null> {
    return this.uow.read(async (tx) => {
      const op = await this.ops.findById(tx, operationId);
      if (!op || !isFinished(op)) return null;
      if (op.status === OperationStatus.Failed) {
        return { kind: 'failed', error: errorFromOperation(op.errorCode, op.errorMessage, op.vmId) };
      }
      const vm = await this.provisioner.loadVm(tx, op.vmId!);
      return { kind: 'succeeded', status: op.action === OperationAction.Create ? 201 : 200, vm: toVmResponse(vm!) };
    });
  }

  /** A repeated Idempotency-Key: replay the stored response, or follow the first request's operation. */
  private async replayCreate(claim: Extract<KeyClaim, { kind: 'seen' }>, options: RequestOptions): Promise<VmOutcome> {
    if (claim.responseStatus === 201 && claim.responseBody) {
      return { kind: 'done', status: 201, vm: JSON.parse(claim.responseBody) as VmResponseDto, replayed: true };
    }
    if (!claim.operationId || !claim.vmId) {
      throw new ConflictError('request_in_progress', 'A request with this Idempotency-Key is still being processed');
    }
    const { op, vm } = await this.uow.read(async (tx) => ({
      op: await this.ops.findById(tx, claim.operationId!),
      vm: await this.provisioner.loadVm(tx, claim.vmId!),
    }));
    if (op && op.status === OperationStatus.Failed) throw errorFromOperation(op.errorCode, op.errorMessage, op.vmId);
    if (op && op.status === OperationStatus.Succeeded && vm) return { kind: 'done', status: 201, vm: toVmResponse(vm), replayed: true };
    return this.awaitOperation(claim.operationId, vm!, options, true);
  }

  /** The quota this request would exceed, as a 403, or null if it fits. */
  private async quotaError(tx: Tx, userId: string, amounts: ResourceAmounts): Promise<DomainError | null> {
    const user = await this.users.findById(tx, userId);
    if (!user) return new NotFoundError('user', userId);
    const quota = effectiveQuota(user, this.config.quotaDefaults);
    const checks: [string, number, number, number][] = [
      ['vms', quota.vms, user.usedVms, amounts.vms],
      ['vcpus', quota.vcpus, user.usedVcpus, amounts.vcpus],
      ['memory_mib', quota.memoryMib, user.usedMemoryMib, amounts.memoryMib],
      ['gpus', quota.gpus, user.usedGpus, amounts.gpus],
    ];
    const over = checks.find(([, q, u, r]) => u + r > q);
    return over ? new QuotaExceededError(over[0], over[1], over[2], over[3]) : null;
  }

  private translateConstraint(error: unknown, dto: CreateVmDto): unknown {
    const violation = constraintViolation(error);
    if (violation?.kind === 'unique' && /public_ip/.test(violation.target)) {
      return new ConflictError('public_ip_in_use', `The public IP ${dto.public_ip} is used by another live VM`, { field: 'public_ip' });
    }
    return error;
  }

  private newOperation(action: OperationAction, vmId: string, userId: string, requestId: string | null, now: Date): OperationRecord {
    return {
      id: this.ids.next(),
      vmId,
      action,
      status: OperationStatus.Pending,
      stage: 'queued',
      attempts: 0,
      errorCode: null,
      errorMessage: null,
      userId,
      hypervisorVmId: null,
      requestId,
      leaseOwner: null,
      leaseExpiresAt: null,
      startedAt: null,
      finishedAt: null,
      createdAt: now,
      updatedAt: now,
    };
  }
}

function describeRequest(request: PlacementRequest): string {
  const gpus = request.gpuCount > 0 ? ` with ${request.gpuCount}× ${request.gpuModel ?? 'any GPU'}` : '';
  const region = request.region ? ` in ${request.region}` : '';
  return `${request.cpuCores} vCPU / ${request.memoryMib} MiB / ${request.diskGib} GiB${gpus}${region}`;
}
