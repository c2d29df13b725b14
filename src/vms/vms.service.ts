import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { isAdmin } from '../auth/auth-user';
import { Clock } from '../common/clock';
import { decodeCursor, toPage } from '../common/cursor';
import { CapacityAlternative, ConflictError, InsufficientCapacityError, NotFoundError, ValidationFailedError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { constraintViolation } from '../database/constraint-violation';
import { allTogether, settled, together } from '../database/statements-together';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { HostEntity } from '../fleet/host.entity';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { PlacementConflictError, PlacementPlan, PlacementService } from '../fleet/placement.service';
import { IdempotencyRepository, KeyClaim, fingerprint } from '../idempotency/idempotency.repository';
import { OperationPageDto } from '../operations/dto/operation.dto';
import { OperationAction, OperationEntity, OperationStatus } from '../operations/operation.entity';
import { toOperationResponse } from '../operations/operation.mapper';
import { Lease, OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { CreateVmDto } from './dto/create-vm.dto';
import { UpdateVmDto } from './dto/update-vm.dto';
import { ListVmsQueryDto } from './dto/list-vms.query';
import { VmPageDto, VmResponseDto } from './dto/vm-response.dto';
import { CapacityQueueService } from './capacity-queue.service';
import { PowerState, VmEntity, VmSshKey, VmStatus } from './vm.entity';
import { toVmResponse } from './vm.mapper';
import { CAPACITY_RETRY_AFTER_SECONDS, VmOutcome } from './vm-outcome';
import { RequestOptions, Started, VmOperationRunner, viewerOf } from './vm-operation-runner';
import { VmResources, amountsOf } from './vm-resources.service';
import { VmAction, VmEvent, assertActionAllowed } from './vm-state-machine';
import { VmsRepository } from './vms.repository';
import { ImagesRepository } from '../images/images.repository';
import { SshKeysRepository } from '../ssh-keys/ssh-keys.repository';
import { findMigProfile, findVgpuProfile, isKnownMigProfileName, MIG_PROFILES_BY_MODEL, supportsMig, validProfileNames } from '../fleet/domain/gpu-profiles';
import { GPU_MODEL_ID_PATTERN } from '../fleet/domain/gpu-model';
import { slotClaimsOf } from './vm-gpu-devices';

export type { RequestOptions } from './vm-operation-runner';

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
  /** Resolved in the create's transaction: the image's name (null: none) and the keys as they are now. */
  image?: string | null;
  sshKeys?: VmSshKey[];
  /** Hosts an earlier attempt of this request found full when it claimed them; later plans leave them out. */
  fullHosts: Set<string>;
}

type CreateStep =
  | Started
  | { kind: 'queued'; vm: VmEntity; op: OperationEntity; position: number }
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
    private readonly runner: VmOperationRunner,
    private readonly queue: CapacityQueueService,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
    private readonly images: ImagesRepository,
    private readonly sshKeys: SshKeysRepository,
  ) {}

  /**
   * Records the VM (provisioning), its placement and its create operation in
   * one transaction, then runs the operation and waits for it up to the
   * caller's bound. When nothing fits and the caller agreed to wait, the
   * create waits in the capacity queue instead.
   */
  async create(user: AuthUser, dto: CreateVmDto, options: RequestOptions): Promise<VmOutcome> {
    if (dto.wait_for_capacity_seconds !== undefined && !options.respondAsync) {
      throw new ValidationFailedError([{ field: 'wait_for_capacity_seconds', message: 'needs Prefer: respond-async (a wait for capacity answers 202 at once)' }]);
    }
    if (dto.wait_for_capacity_seconds !== undefined && dto.wait_for_capacity_seconds > this.config.maxCapacityWaitSeconds) {
      throw new ValidationFailedError([{ field: 'wait_for_capacity_seconds', message: `must not be greater than ${this.config.maxCapacityWaitSeconds} (MAX_CAPACITY_WAIT_SECONDS)` }]);
    }
    const wanted = await this.withGpuModelId(dto);
    const request: CreateRequest = {
      user,
      dto: wanted,
      placement: placementRequestOf(wanted),
      // The body as sent: a retry that writes the model the same way replays.
      hash: options.idempotencyKey ? fingerprint(dto) : null,
      options,
      fullHosts: new Set(),
    };
    for (let attempt = 1; ; attempt++) {
      // GPU placements are serialised per model (identical requests would all pick the same best GPUs); CPU-only
      // ones claim optimistically and are serialised only on their last attempt after losing races.
      const serialise = request.placement.gpuCount > 0 || Boolean(request.placement.gpuProfile) || attempt === MAX_PLACEMENT_ATTEMPTS;
      const lease = this.worker.tryReserve(this.clock.now());
      let step: CreateStep;
      try {
        step = await this.uow.transaction((tx) => this.recordCreate(tx, request, serialise, lease));
      } catch (error) {
        if (lease) this.worker.unreserve();
        if (error instanceof PlacementConflictError) {
          if (error.fullHostId) request.fullHosts.add(error.fullHostId);
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
      if (step.kind === 'seen') return this.runner.replay(step.claim, user, options);
      if (step.kind === 'queued') {
        this.queue.kick();
        return this.runner.accepted(step.vm, step.op.id, user, options, false, { queuePosition: step.position });
      }
      if (step.kind === 'refused') {
        throw new InsufficientCapacityError(
          `No host can take ${describeRequest(request.placement)} right now`,
          step.alternatives,
          CAPACITY_RETRY_AFTER_SECONDS,
          step.vm.id,
        );
      }
      return this.runner.dispatch(step, user, options);
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
        if (!step.op) return this.runner.accepted(step.vm, '', user, options, true);
        return this.runner.awaitOperation(step.op.id, step.vm, user, options, true);
      }
      return this.runner.dispatch(step, user, options);
    }
  }

  async get(user: AuthUser, id: string): Promise<VmResponseDto> {
    const vm = await this.uow.read((tx) => this.findVisible(tx, user, id));
    if (!vm) throw new NotFoundError('vm', id);
    return toVmResponse(vm, viewerOf(user));
  }

  /**
   * Renames or relabels a VM (its labels replaced): a change of the record only, logged as a succeeded
   * `update` operation. The guest keeps the hostname it booted with.
   */
  async update(user: AuthUser, id: string, dto: UpdateVmDto, options: RequestOptions): Promise<VmResponseDto> {
    const changes: Partial<Pick<VmEntity, 'name' | 'labels'>> = {};
    if (dto.name !== undefined) changes.name = dto.name;
    if (dto.labels !== undefined) changes.labels = dto.labels;
    if (Object.keys(changes).length === 0) throw new ValidationFailedError([{ field: 'body', message: 'must give name or labels' }]);
    const vm = await this.uow.transaction(async (tx) => {
      // The update is conditional on the status it was allowed from; when it loses (a delete got there
      // first), the VM is read again and refused for its new status.
      for (;;) {
        const found = await this.findVisible(tx, user, id);
        if (!found) throw new NotFoundError('vm', id);
        assertActionAllowed(VmAction.Update, found.status, found.powerState);
        const moved = await this.vms.updateDetails(tx, id, changes);
        if (!moved.applied) continue;
        await this.runner.recordFinished(tx, OperationAction.Update, id, user, options, moved.updatedAt, { ...dto });
        return Object.assign(found, changes, { updatedAt: moved.updatedAt });
      }
    });
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
    return toPage(rows, limit, (op) => toOperationResponse(op));
  }

  /** The intent of a create, in one transaction: each step below either ends it or hands on. */
  private async recordCreate(tx: Tx, request: CreateRequest, serialise: boolean, lease: Lease | null): Promise<CreateStep> {
    const key = await this.claimIdempotencyKey(tx, request);
    if (key?.kind === 'seen') return { kind: 'seen', claim: key };
    request.image = await this.resolveImage(tx, request.dto.image);
    request.sshKeys = await this.resolveSshKeys(tx, request.user, request.dto.ssh_keys ?? []);
    await this.assertPublicIpFree(tx, request.dto.public_ip);
    // Capacity goes to those already waiting first: a new request may take a host only if none of them could use it.
    // Which hosts they hold is read while the plan reads the fleet.
    const held = this.queue.heldHosts(tx, request.fullHosts);
    const plan = await this.placement.plan(tx, request.placement, serialise, held);
    if (!plan) return this.recordNoRoom(tx, request, key?.id ?? null);
    return this.recordPlaced(tx, request, plan, key?.id ?? null, lease);
  }

  /** The image's name: the one asked for, else DEFAULT_IMAGE, else none; one that is not registered is a 400 naming `image`. */
  private async resolveImage(tx: Tx, asked: string | undefined): Promise<string | null> {
    const name = asked ?? this.config.defaultImage;
    if (name === null) return null;
    if (await this.images.findByName(tx, name)) return name;
    const message = asked ? `names no registered image: ${name} (see GET /images)` : `is absent, and DEFAULT_IMAGE ${name} is not a registered image (see GET /images)`;
    throw new ValidationFailedError([{ field: 'image', message }]);
  }

  /** The caller's own keys by name; a name they do not have is a 400 that does not reveal whether another user has it. */
  private async resolveSshKeys(tx: Tx, user: AuthUser, names: string[]): Promise<VmSshKey[]> {
    if (names.length === 0) return [];
    const found = new Map((await this.sshKeys.findByNames(tx, user.id, names)).map((key) => [key.name, key]));
    const missing = names.filter((name) => !found.has(name));
    if (missing.length > 0) throw new ValidationFailedError([{ field: 'ssh_keys', message: `you have no SSH key named ${missing.join(', ')} (see GET /ssh-keys)` }]);
    return names.map((name) => {
      const key = found.get(name)!;
      return { name: key.name, fingerprint: key.fingerprint, publicKey: key.publicKey };
    });
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
   * The VM row and its create operation first; the contended rows (the host's
   * counters, its GPUs, the user's usage) last, all sent together, so other
   * creates and deletes on this host or by this user wait for the fewest
   * round trips before COMMIT.
   */
  private async recordPlaced(tx: Tx, request: CreateRequest, plan: PlacementPlan, keyId: string | null, lease: Lease | null): Promise<Started> {
    const vm = this.newVm(request, plan);
    const op = this.runner.newOperation(OperationAction.Create, vm.id, request.user, request.options, lease);
    // The VM's row first (the others refer to it), then its operation and the claim, sent together (statements-together.ts).
    await allTogether(tx, [
      () => this.vms.insert(tx, vm),
      () => this.ops.insert(tx, op),
      () => this.resources.claim(tx, vm, plan, request.placement, plan.gpus.map(() => this.ids.next())),
    ]);
    if (keyId) await this.idempotency.attach(tx, keyId, vm.id, op.id);
    vm.slotClaims = slotClaimsOf(vm.id, plan);
    return { kind: 'started', vm, op, lease };
  }

  /**
   * Nothing fits now. A request no host could ever hold is a 422 and leaves no
   * record; over quota is the more useful answer when both apply; a caller who
   * agreed to wait joins the capacity queue; otherwise a failed VM and
   * operation say why (the VM is listed only with status=failed).
   */
  private async recordNoRoom(tx: Tx, request: CreateRequest, keyId: string | null): Promise<CreateStep> {
    const { dto, placement } = request;
    await this.placement.assertSatisfiable(tx, placement);
    const quotaProblem = await this.resources.quotaError(
      tx,
      request.user.id,
      amountsOf({ cpuCores: dto.cpu_cores, memory: dto.memory, gpuCount: placement.gpuCount, gpuProfile: placement.gpuProfile, gpuModel: placement.gpuModel }),
    );
    if (quotaProblem) throw quotaProblem;
    if (dto.wait_for_capacity_seconds !== undefined) return this.recordQueued(tx, request, keyId);
    const alternatives = await this.placement.alternatives(tx, placement);
    const now = this.clock.now();
    const reason = `insufficient capacity: no active host has room for ${describeRequest(placement)}`;
    const vm = Object.assign(this.newVm(request, null), { status: VmStatus.Failed, statusReason: reason, releasedAt: now, publicIp: null });
    await this.vms.insert(tx, vm);
    const op = this.runner.newOperation(OperationAction.Create, vm.id, request.user, request.options, null);
    Object.assign(op, { status: OperationStatus.Failed, stage: 'done', errorCode: 'insufficient_capacity', errorMessage: reason, finishedAt: now });
    await this.ops.insert(tx, op);
    if (keyId) {
      await this.idempotency.attach(tx, keyId, vm.id, op.id);
      // A capacity refusal is worth retrying with the same key, so it is not replayed.
      await this.idempotency.forget(tx, op.id);
    }
    return { kind: 'refused', vm, alternatives };
  }

  /** The VM waits, unplaced, holding its quota; its create operation waits in the queue of its model and region. */
  private async recordQueued(tx: Tx, request: CreateRequest, keyId: string | null): Promise<CreateStep> {
    const vm = this.newVm(request, null);
    await this.vms.insert(tx, vm);
    const op = this.runner.newOperation(OperationAction.Create, vm.id, request.user, request.options, null);
    this.queue.enqueue(op, request.placement, request.dto.wait_for_capacity_seconds!);
    await this.ops.insert(tx, op);
    if (keyId) await this.idempotency.attach(tx, keyId, vm.id, op.id);
    await this.resources.reserveQuota(tx, vm);
    return { kind: 'queued', vm, op, position: await this.queue.position(tx, op) };
  }

  /** A GPU model written as people write it (`H100`) becomes the fleet's id for it before anything else reads it. */
  private async withGpuModelId(dto: CreateVmDto): Promise<CreateVmDto> {
    const model = dto.gpu_model;
    // Without GPUs the model is refused as such (placementRequestOf), whatever it names.
    if (model === undefined || GPU_MODEL_ID_PATTERN.test(model) || (!dto.gpu_count && dto.gpu_profile === undefined)) return dto;
    return { ...dto, gpu_model: await this.placement.resolveGpuModel(model) };
  }

  private async recordDelete(tx: Tx, user: AuthUser, id: string, options: RequestOptions, lease: Lease | null): Promise<DeleteStep> {
    // Joined with its host whoever asks (the response shows the host to admins only): the delete's hypervisor call needs its URI.
    // Its open operation is read with it (sent together); it counts only once the VM is found to be the caller's.
    const [found, openFound] = await together(tx, [
      () => this.vms.findVisible(tx, id, isAdmin(user) ? null : user.id, { gpus: true, host: true }),
      () => this.ops.findOpenForVm(tx, id),
    ]);
    const vm = settled(found);
    if (!vm) throw new NotFoundError('vm', id);
    if (vm.status === VmStatus.Deleted) return { kind: 'done', vm };
    const open = settled(openFound);
    // Deleting already (its status may have moved after this request read it): follow that delete.
    if (vm.status === VmStatus.Deleting || open?.action === OperationAction.Delete) return { kind: 'in_flight', vm, op: open };
    const now = this.clock.now();
    // A request waiting for capacity is cancelled: its quota goes back, and it leaves the queue.
    if (open?.status === OperationStatus.WaitingForCapacity) {
      if (!(await this.queue.cancel(tx, open, vm, now))) throw new LostRace();
      vm.releasedAt = now;
    } else if (open) {
      throw operationInProgress(open);
    }
    // Nothing on the hypervisor: a VM that failed and gave everything back, or a create cancelled before it was placed.
    if ((vm.status === VmStatus.Failed && vm.releasedAt) || vm.status === VmStatus.Provisioning) return this.deleteRecordOnly(tx, vm, user, options);
    assertActionAllowed(VmAction.Delete, vm.status, vm.powerState);
    // The VM's one open-operation slot first, then its row: the order every operation's outcome takes too (no deadlock).
    // Where the VM goes back to if the delete never reaches its host (VmProvisioner.failDelete).
    const op = this.runner.newOperation(OperationAction.Delete, vm.id, user, options, lease, { from: vm.status });
    const [inserted, transitioned] = await together(tx, [() => this.ops.insert(tx, op), () => this.vms.transition(tx, vm.id, VmEvent.DeleteRequested)]);
    if (inserted.status === 'rejected' && isOpenOperationTaken(inserted.reason)) throw new LostRace();
    settled(inserted);
    const moved = settled(transitioned)!;
    if (!moved.applied) throw new LostRace();
    Object.assign(vm, { status: VmStatus.Deleting, updatedAt: moved.updatedAt });
    return { kind: 'started', vm, op, lease };
  }

  /** A VM that holds nothing on the hypervisor: deleting it is only a record change. */
  private async deleteRecordOnly(tx: Tx, vm: VmEntity, user: AuthUser, options: RequestOptions): Promise<DeleteStep> {
    const now = this.clock.now();
    await this.resources.markGone(tx, vm, now);
    const moved = await this.vms.transition(tx, vm.id, VmEvent.RecordDeleted, { deletedAt: now });
    if (!moved.applied) throw new LostRace();
    await this.runner.recordFinished(tx, OperationAction.Delete, vm.id, user, options, now);
    return { kind: 'done', vm: Object.assign(vm, { status: VmStatus.Deleted, deletedAt: now, updatedAt: moved.updatedAt }) };
  }

  private findVisible(tx: Tx, user: AuthUser, id: string): Promise<VmEntity | null> {
    return this.vms.findVisible(tx, id, isAdmin(user) ? null : user.id, { gpus: true, host: isAdmin(user) });
  }

  /** The VM as recorded at admission: provisioning on the plan's host, or (no plan) not placed anywhere. */
  private newVm({ user, dto, placement, image, sshKeys }: CreateRequest, plan: PlacementPlan | null): VmEntity {
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
      image: image ?? null,
      userData: dto.user_data ?? null,
      sshKeys: sshKeys && sshKeys.length > 0 ? sshKeys : null,
      status: VmStatus.Provisioning,
      statusReason: null,
      powerState: PowerState.Unknown,
      diskRef: null,
      hostId: plan?.hostId ?? null,
      host: plan ? Object.assign(new HostEntity(), { id: plan.hostId, name: plan.hostName, region: plan.region, hypervisorUri: plan.hypervisorUri }) : null,
      region: plan?.region ?? null,
      gpuCount: placement.gpuCount,
      gpuProfile: placement.gpuProfile ?? null,
      gpuModel: plan?.gpus[0]?.model ?? plan?.slotClaim?.gpu.model ?? placement.gpuModel ?? null,
      slotClaims: [],
      allocations: (plan?.gpus ?? []).map((gpu) => Object.assign(new GpuAllocationEntity(), { gpuId: gpu.id, vmId: id, gpu })),
      hypervisorId: null,
      releasedAt: null,
      deletedAt: null,
    });
  }
}

/** The unique index that keeps one open operation per VM refused a second. */
export function isOpenOperationTaken(error: unknown): boolean {
  const violation = constraintViolation(error);
  return violation?.kind === 'unique' && /uq_operations_open_vm|operations\.vm_id/.test(violation.target);
}

/** Another operation holds the VM: one runs at a time. */
export function operationInProgress(open: OperationEntity): ConflictError {
  return new ConflictError('operation_in_progress', `The VM is busy with a ${open.action} (operation ${open.id}); try again when it finishes`, {
    operation_id: open.id,
  });
}

function placementRequestOf(dto: CreateVmDto): PlacementRequest {
  const gpuCount = dto.gpu_count ?? 0;
  if (dto.gpu_profile !== undefined) assertKnownProfile(dto, gpuCount);
  else if (dto.gpu_model && gpuCount === 0) {
    throw new ValidationFailedError([{ field: 'gpu_model', message: 'needs gpu_count of at least 1 (or a gpu_profile)' }]);
  }
  return {
    cpuCores: dto.cpu_cores,
    memoryMib: dto.memory,
    diskGib: dto.disk_size,
    gpuCount,
    gpuProfile: dto.gpu_profile ?? null,
    gpuModel: dto.gpu_model ?? null,
    region: dto.region ?? null,
  };
}

/**
 * gpu_profile is the alternative to gpu_count, never both; it must be a vGPU size, or a MIG profile of the
 * model asked for (of some model when none is), else a 400 listing the valid ones.
 */
function assertKnownProfile(dto: CreateVmDto, gpuCount: number): void {
  const profile = dto.gpu_profile!;
  if (gpuCount > 0) {
    throw new ValidationFailedError([{ field: 'gpu_profile', message: `cannot be given with gpu_count (${gpuCount}): ask for a GPU slice or for whole GPUs, not both` }]);
  }
  if (findVgpuProfile(profile)) return;
  if (dto.gpu_model) {
    if (findMigProfile(dto.gpu_model, profile)) return;
    const valid = validProfileNames(dto.gpu_model);
    const mig = supportsMig(dto.gpu_model) ? '' : ` (${dto.gpu_model} has no MIG profiles)`;
    throw new ValidationFailedError([{ field: 'gpu_profile', message: `${profile} is not a profile of ${dto.gpu_model}${mig}; valid: ${valid.join(', ')}` }]);
  }
  if (isKnownMigProfileName(profile)) return;
  const mig = [...new Set(Object.values(MIG_PROFILES_BY_MODEL).flatMap((table) => table.map((p) => p.name)))];
  throw new ValidationFailedError([
    { field: 'gpu_profile', message: `${profile} is neither a vGPU size nor a MIG profile; valid: ${validProfileNames('').join(', ')}, or with gpu_model a MIG profile of that model (${mig.join(', ')})` },
  ]);
}

function publicIpInUse(publicIp: string | null | undefined): ConflictError {
  return new ConflictError('public_ip_in_use', `The public IP ${publicIp} is used by another live VM`, { field: 'public_ip' });
}

function translateConstraint(error: unknown, dto: CreateVmDto): unknown {
  const violation = constraintViolation(error);
  if (violation?.kind === 'unique' && /public_ip/.test(violation.target)) return publicIpInUse(dto.public_ip);
  return error;
}

export function describeRequest(request: PlacementRequest): string {
  const gpus = request.gpuProfile
    ? ` with a ${request.gpuProfile} of ${request.gpuModel ?? 'any GPU'}`
    : request.gpuCount > 0
      ? ` with ${request.gpuCount}× ${request.gpuModel ?? 'any GPU'}`
      : '';
  const region = request.region ? ` in ${request.region}` : '';
  return `${request.cpuCores} vCPU / ${request.memoryMib} MiB / ${request.diskGib} GiB${gpus}${region}`;
}
