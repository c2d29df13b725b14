import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { VirtualMachine } from '@vmplane/sdk';
import { Clock, laterThan } from '../common/clock';
import { RandomSource } from '../common/random-source';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import { PlacementService } from '../fleet/placement.service';
import { HypervisorCallError } from '../hypervisor/hypervisor-errors';
import { VM_ID_LABEL_PREFIX, platformVmIdFromLabels } from '../hypervisor/hypervisor.constants';
import { HypervisorGateway, RetryObserver } from '../hypervisor/hypervisor.gateway';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { OperationAction, OperationStatus } from '../operations/operation.entity';
import type { OperationRecord } from '../operations/operation-record';
import { OperationWaiter } from '../operations/operation-waiter';
import { OperationHandler, OperationWorker } from '../operations/operation-worker';
import { Completion, OperationsRepository } from '../operations/operations.repository';
import { UsersRepository } from '../users/users.repository';
import { VmStatus } from './vm.entity';
import { toVmResponse } from './vm.mapper';
import { OperationResult, errorCodeFor, errorFromOperation } from './vm-outcome';
import type { VmView } from './vm-view';
import { VmsRepository } from './vms.repository';

/** The worker lost its lease (it stalled past it) and another worker took the operation over. */
class LeaseLostError extends Error {
  constructor(operationId: string) {
    super(`Lease on operation ${operationId} was lost; its outcome is left to the worker that holds it now`);
  }
}

/** The VM left the state the outcome applies to; the transaction is rolled back and the operation superseded. */
class OutcomeNotApplicable extends Error {}

/** What a request hands to the operation it starts itself. */
export interface ProvisionContext {
  vm: VmView;
  /** False when the request carried no Idempotency-Key, so there is no stored response to write. */
  idempotent: boolean;
}

/**
 * Carries out create and delete operations against the hypervisor. The
 * intent is already recorded when this runs; each outcome is recorded in one
 * transaction together with the VM's status and its resources.
 */
@Injectable()
export class VmProvisioner implements OperationHandler, OnModuleInit {
  private readonly logger = new Logger(VmProvisioner.name);

  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly fleet: FleetRepository,
    private readonly placement: PlacementService,
    private readonly users: UsersRepository,
    private readonly idempotency: IdempotencyRepository,
    private readonly gateway: HypervisorGateway,
    private readonly worker: OperationWorker,
    private readonly waiter: OperationWaiter,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {}

  onModuleInit(): void {
    this.worker.register(this);
  }

  async execute(op: OperationRecord, context?: ProvisionContext): Promise<void> {
    let result: OperationResult;
    try {
      if (op.action === OperationAction.Create) result = await this.create(op, context);
      else if (op.action === OperationAction.Delete) result = await this.delete(op, context);
      else result = await this.supersede(op, `operations of type ${op.action} are not run by workers`);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        // Another worker owns the operation now and records its outcome; a waiting request reads it from the database.
        this.logger.warn({ operationId: op.id }, error.message);
        return;
      }
      // The database failed under us: the operation keeps its lease, which lapses, and it is resumed.
      this.logger.error({ err: error, operationId: op.id }, 'operation could not be recorded; it will be resumed');
      result = { kind: 'fault', error };
    }
    this.waiter.notify(op.id, result);
  }

  /** Gives back a VM's host capacity, GPUs and quota, once. */
  async releaseResources(tx: Tx, vm: VmView, now: Date): Promise<void> {
    if (!(await this.vms.markReleased(tx, vm.id, now))) return;
    await this.returnResources(tx, vm, now);
  }

  /**
   * The giving back itself; callers have just set released_at (conditionally) themselves.
   * Lock order, as in VmsService.recordCreate: the host's row, its GPUs, then the user's row.
   * Mixing orders deadlocked on PostgreSQL under concurrent creates and deletes by one user.
   */
  private async returnResources(tx: Tx, vm: VmView, now: Date): Promise<void> {
    await this.placement.release(tx, { ...vm, memoryMib: vm.memory, diskGib: vm.diskSize }, now);
    await this.users.release(tx, vm.ownerId, { vcpus: vm.cpuCores, memoryMib: vm.memory, gpus: vm.gpuCount, vms: 1 }, now);
  }

  async loadVm(tx: Tx, id: string): Promise<VmView | null> {
    const vm = await this.vms.findById(tx, id);
    if (vm && vm.gpuCount > 0) vm.gpus = (await this.fleet.gpusOfVms(tx, [vm.id])).get(vm.id) ?? [];
    return vm;
  }

  /** The request's own copy of the VM when it started the operation itself; otherwise read it. */
  private async currentVm(op: OperationRecord, context?: ProvisionContext): Promise<VmView | null> {
    if (context?.vm && context.vm.id === op.vmId) return context.vm;
    return this.uow.read((tx) => this.loadVm(tx, op.vmId!));
  }

  private async create(op: OperationRecord, context?: ProvisionContext): Promise<OperationResult> {
    const vm = await this.currentVm(op, context);
    if (!vm || vm.status !== VmStatus.Provisioning) return this.supersede(op, `the VM is ${vm?.status ?? 'gone'}`);
    const progress = this.progressRecorder(op);
    let created: VirtualMachine | null = null;
    try {
      // A resumed operation may have created the VM before its worker died: adopt it rather than make a second.
      if (op.attempts > 1) created = await this.findOnHypervisor(vm.id);
      created ??= await this.gateway.createVm(
        {
          name: vm.name,
          cpuCores: vm.cpuCores,
          memory: vm.memory,
          diskSize: vm.diskSize,
          publicIp: vm.publicIp,
          labels: [...vm.labels, `${VM_ID_LABEL_PREFIX}${vm.id}`],
          host: vm.hostName,
          gpus: (vm.gpus ?? []).map((g) => g.uuid),
        },
        () => this.random.next(),
        progress.observer,
      );
    } catch (error) {
      if (!(error instanceof HypervisorCallError)) throw error;
      return this.failCreate(op, vm, error, progress.attempts());
    }
    return this.completeCreate(op, vm, created, progress.attempts(), context?.idempotent ?? true);
  }

  private async completeCreate(
    op: OperationRecord,
    vm: VmView,
    created: VirtualMachine,
    attempts: number,
    mayHaveIdempotencyKey: boolean,
  ): Promise<OperationResult> {
    const now = this.clock.now();
    const updated: VmView = { ...vm, status: VmStatus.Created, hypervisorId: created.id, updatedAt: laterThan(now, vm.updatedAt) };
    const body = toVmResponse(updated);
    const applied = await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Succeeded, attempts }, now);
      const moved = await this.vms.transition(
        tx,
        vm.id,
        [VmStatus.Provisioning],
        { status: VmStatus.Created, hypervisorId: created.id },
        updated.updatedAt,
      );
      if (!moved) throw new OutcomeNotApplicable();
      if (mayHaveIdempotencyKey) await this.idempotency.recordResponse(tx, op.id, 201, body, now);
      return true;
    }).catch((error: unknown) => {
      if (error instanceof OutcomeNotApplicable) return false;
      throw error;
    });
    // Someone else decided this VM's fate meanwhile; the reconciler removes the now-orphaned hypervisor VM.
    if (!applied) return this.supersede(op, 'the VM left provisioning while it was being created');
    return { kind: 'succeeded', status: 201, vm: body };
  }

  private async failCreate(op: OperationRecord, vm: VmView, error: HypervisorCallError, attempts: number): Promise<OperationResult> {
    const now = this.clock.now();
    const code = errorCodeFor(error.classified.kind);
    const reason = `create failed after ${attempts} attempt(s): ${error.message}`;
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Failed, attempts, errorCode: code, errorMessage: error.message }, now);
      const moved = await this.vms.transition(
        tx,
        vm.id,
        [VmStatus.Provisioning],
        { status: VmStatus.Failed, statusReason: reason, releasedAt: now },
        laterThan(now, vm.updatedAt),
      );
      if (moved) await this.returnResources(tx, vm, now);
      // A capacity refusal is worth retrying with the same key, so it is not replayed.
      if (code === 'insufficient_capacity') await this.idempotency.forget(tx, op.id);
    });
    this.logger.warn({ operationId: op.id, vmId: vm.id, code, attempts }, `create failed: ${error.message}`);
    return { kind: 'failed', error: errorFromOperation(code, error.message, vm.id) };
  }

  private async delete(op: OperationRecord, context?: ProvisionContext): Promise<OperationResult> {
    const vm = await this.currentVm(op, context);
    if (!vm || vm.status !== VmStatus.Deleting) return this.supersede(op, `the VM is ${vm?.status ?? 'gone'}`);
    const progress = this.progressRecorder(op);
    if (vm.hypervisorId) {
      try {
        await this.gateway.deleteVm(vm.hypervisorId, () => this.random.next(), progress.observer);
      } catch (error) {
        if (!(error instanceof HypervisorCallError)) throw error;
        return this.failDelete(op, vm, error, progress.attempts());
      }
    }
    const now = this.clock.now();
    const updated: VmView = { ...vm, status: VmStatus.Deleted, deletedAt: now, updatedAt: laterThan(now, vm.updatedAt) };
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Succeeded, attempts: progress.attempts() }, now);
      // A deleting VM always holds its resources: released_at is set here, with the status, exactly once.
      const moved = await this.vms.transition(
        tx,
        vm.id,
        [VmStatus.Deleting],
        { status: VmStatus.Deleted, deletedAt: now, releasedAt: vm.releasedAt ? undefined : now },
        updated.updatedAt,
      );
      if (moved && !vm.releasedAt) await this.returnResources(tx, vm, now);
      // The reconciler may have released the resources meanwhile (a failed VM found gone); finish the delete anyway.
      if (!moved && !vm.releasedAt) {
        await this.vms.transition(tx, vm.id, [VmStatus.Deleting], { status: VmStatus.Deleted, deletedAt: now }, updated.updatedAt);
      }
    });
    return { kind: 'succeeded', status: 200, vm: toVmResponse(updated) };
  }

  /** The VM may still exist on the hypervisor, so it keeps its resources; deleting it again retries. */
  private async failDelete(op: OperationRecord, vm: VmView, error: HypervisorCallError, attempts: number): Promise<OperationResult> {
    const now = this.clock.now();
    const code = errorCodeFor(error.classified.kind);
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Failed, attempts, errorCode: code, errorMessage: error.message }, now);
      await this.vms.transition(
        tx,
        vm.id,
        [VmStatus.Deleting],
        { status: VmStatus.Failed, statusReason: `delete failed after ${attempts} attempt(s): ${error.message}` },
        laterThan(now, vm.updatedAt),
      );
    });
    this.logger.warn({ operationId: op.id, vmId: vm.id, code, attempts }, `delete failed: ${error.message}`);
    return { kind: 'failed', error: errorFromOperation(code, error.message, vm.id) };
  }

  private async supersede(op: OperationRecord, why: string): Promise<OperationResult> {
    const message = `Operation superseded: ${why}`;
    await this.uow.transaction((tx) =>
      this.completeOwn(
        tx,
        op,
        { status: OperationStatus.Failed, attempts: op.attempts, errorCode: 'operation_superseded', errorMessage: message },
        this.clock.now(),
      ),
    );
    return { kind: 'failed', error: errorFromOperation('operation_superseded', message, op.vmId) };
  }

  /** Completes the operation only while this worker still holds its lease; otherwise the whole outcome is dropped. */
  private async completeOwn(tx: Tx, op: OperationRecord, completion: Completion, now: Date): Promise<void> {
    if (!(await this.ops.complete(tx, op.id, completion, now, op.leaseOwner))) throw new LeaseLostError(op.id);
  }

  private async findOnHypervisor(vmId: string): Promise<VirtualMachine | null> {
    const all = await this.gateway.listVms();
    return all.find((candidate) => platformVmIdFromLabels(candidate.labels) === vmId) ?? null;
  }

  /** Counts attempts and records each retry on the operation, so GET /operations shows progress. */
  private progressRecorder(op: OperationRecord): { observer: RetryObserver; attempts: () => number } {
    let attempts = op.attempts;
    const observer: RetryObserver = async (_failed, _delay, error) => {
      attempts++;
      await this.uow.transaction((tx) => this.ops.progress(tx, op.id, 'backoff', attempts, error.message, this.clock.now()));
    };
    return { observer, attempts: () => attempts };
  }
}
