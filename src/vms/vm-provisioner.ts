import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { HypervisorTarget, VirtualMachine } from '@vmplane/sdk';
import { Clock } from '../common/clock';
import { RandomSource } from '../common/random-source';
import { settled, together } from '../database/statements-together';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import { HypervisorCallError } from '../hypervisor/hypervisor-errors';
import { platformVmIdFromLabels } from '../hypervisor/hypervisor.constants';
import { HypervisorGateway, RetryObserver } from '../hypervisor/hypervisor.gateway';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { InstallationService } from '../installation/installation.service';
import { OperationAction, OperationEntity, OperationStatus } from '../operations/operation.entity';
import { OperationWaiter } from '../operations/operation-waiter';
import { OperationHandler, OperationWorker } from '../operations/operation-worker';
import { Completion, OperationsRepository } from '../operations/operations.repository';
import { CapacityQueueService } from './capacity-queue.service';
import { UsageEventKind } from './usage-event.entity';
import { UsageEventsRepository } from './usage-events.repository';
import { PowerState, VmEntity, VmStatus } from './vm.entity';
import { RunContext } from './vm-operation-runner';
import { VmViewer, toVmResponse } from './vm.mapper';
import { OperationResult, errorCodeFor, errorFromOperation } from './vm-outcome';
import { VmResources } from './vm-resources.service';
import { VmEvent } from './vm-state-machine';
import { TransitionResult, VmChanges, VmsRepository } from './vms.repository';
import { VmGuestSpecs } from './vm-guest-spec';

/** The worker lost its lease (it stalled past it) and another worker took the operation over. */
class LeaseLostError extends Error {
  constructor(operationId: string) {
    super(`Lease on operation ${operationId} was lost; its outcome is left to the worker that holds it now`);
  }
}

/** The VM left the state the outcome applies to; the transaction is rolled back and the operation superseded. */
class OutcomeNotApplicable extends Error {}

export type ProvisionContext = RunContext;

/** Operations claimed from the database have no request behind them; their replay body shows what a member sees. */
const DEFAULT_VIEWER: VmViewer = { seesFleet: false };

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
    private readonly resources: VmResources,
    private readonly idempotency: IdempotencyRepository,
    private readonly installation: InstallationService,
    private readonly gateway: HypervisorGateway,
    private readonly worker: OperationWorker,
    private readonly waiter: OperationWaiter,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly usage: UsageEventsRepository,
    private readonly queue: CapacityQueueService,
    private readonly guests: VmGuestSpecs,
    private readonly fleet: FleetRepository,
  ) {}

  onModuleInit(): void {
    this.worker.register([OperationAction.Create, OperationAction.Delete], this);
  }

  async execute(op: OperationEntity, context?: ProvisionContext): Promise<void> {
    let result: OperationResult;
    try {
      if (op.action === OperationAction.Create) result = await this.create(op, context);
      else result = await this.delete(op, context);
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

  /** The request's own copy of the VM when it started the operation itself; otherwise read it. */
  private async currentVm(op: OperationEntity, context?: ProvisionContext): Promise<VmEntity | null> {
    if (context?.vm && context.vm.id === op.vmId) return context.vm;
    return this.uow.read((tx) => this.vms.findById(tx, op.vmId!, { gpus: true, host: true }));
  }

  private async create(op: OperationEntity, context?: ProvisionContext): Promise<OperationResult> {
    const vm = await this.currentVm(op, context);
    if (!vm || vm.status !== VmStatus.Provisioning) return this.supersede(op, `the VM is ${vm?.status ?? 'gone'}`);
    const progress = this.progressRecorder(op);
    let created: VirtualMachine | null = null;
    try {
      const installationId = await this.installation.id();
      // A resumed operation may have created the VM before its worker died: adopt it rather than make a second.
      const request = await this.guests.requestOf(vm, installationId);
      if (op.attempts > 1) created = await this.findOnHypervisor(vm.id, installationId, { host: request.host ?? null, uri: request.uri ?? null });
      created ??= await this.gateway.createVm(
        request,
        () => this.random.next(),
        progress.observer,
      );
    } catch (error) {
      if (!(error instanceof HypervisorCallError)) throw error;
      return this.failCreate(op, vm, error, progress.attempts());
    }
    return this.completeCreate(op, vm, created, progress.attempts(), context);
  }

  private async completeCreate(
    op: OperationEntity,
    vm: VmEntity,
    created: VirtualMachine,
    attempts: number,
    context?: ProvisionContext,
  ): Promise<OperationResult> {
    const now = this.clock.now();
    const applied = await this.uow
      .transaction(async (tx) => {
        const powerState = (created.power_state as PowerState | undefined) ?? PowerState.Running;
        // Its power-on event goes with them; if the VM did not move, the unit is rolled back, the event with it.
        const powerOn = powerState === PowerState.Running ? () => this.usage.record(tx, vm, now, UsageEventKind.PowerOn) : null;
        const succeeded: Completion = { status: OperationStatus.Succeeded, attempts };
        const moved = await this.completeWith(tx, op, succeeded, now, VmEvent.Provisioned, { hypervisorId: created.id, powerState }, powerOn);
        if (!moved.applied) throw new OutcomeNotApplicable();
        Object.assign(vm, { status: VmStatus.Created, hypervisorId: created.id, powerState, updatedAt: moved.updatedAt });
        // A request without a key has no stored response to write; one claimed from the database might.
        if (context?.idempotent ?? true) {
          await this.idempotency.recordResponse(tx, op.id, 201, toVmResponse(vm, context?.viewer ?? DEFAULT_VIEWER));
        }
        return true;
      })
      .catch((error: unknown) => {
        if (error instanceof OutcomeNotApplicable) return false;
        throw error;
      });
    // Someone else decided this VM's fate meanwhile; the reconciler removes the now-orphaned hypervisor VM.
    if (!applied) return this.supersede(op, 'the VM left provisioning while it was being created');
    return { kind: 'succeeded', status: 201, vm };
  }

  private async failCreate(op: OperationEntity, vm: VmEntity, error: HypervisorCallError, attempts: number): Promise<OperationResult> {
    const now = this.clock.now();
    const code = errorCodeFor(error.classified.kind);
    const reason = `create failed after ${attempts} attempt(s): ${error.message}`;
    await this.uow.transaction(async (tx) => {
      const failed: Completion = { status: OperationStatus.Failed, attempts, errorCode: code, errorMessage: error.message };
      const moved = await this.completeWith(tx, op, failed, now, VmEvent.ProvisionFailed, { statusReason: reason, releasedAt: now });
      if (moved.applied) await this.resources.giveBack(tx, vm, now);
      // A refusal for now (no capacity, the hypervisor unreachable) is worth retrying with the same key, so it is not replayed.
      if (code === 'insufficient_capacity' || code === 'hypervisor_unavailable') await this.idempotency.forget(tx, op.id);
      // The host did not answer: the next creates go elsewhere until a reconciliation pass finds it answering.
      if (error.classified.kind === 'host_unreachable' && vm.hostId) await this.fleet.markUnreachable(tx, [vm.hostId], now);
    });
    this.logger.warn({ operationId: op.id, vmId: vm.id, code, attempts }, `create failed: ${error.detail}`);
    this.queue.kick();
    return { kind: 'failed', error: errorFromOperation(code, error.message, vm.id) };
  }

  private async delete(op: OperationEntity, context?: ProvisionContext): Promise<OperationResult> {
    const vm = await this.currentVm(op, context);
    if (!vm || vm.status !== VmStatus.Deleting) return this.supersede(op, `the VM is ${vm?.status ?? 'gone'}`);
    const progress = this.progressRecorder(op);
    if (vm.hypervisorId) {
      try {
        const target = await this.guests.targetOf(vm);
        await this.gateway.deleteVm(vm.hypervisorId, () => this.random.next(), progress.observer, target);
      } catch (error) {
        if (!(error instanceof HypervisorCallError)) throw error;
        return this.failDelete(op, vm, error, progress.attempts());
      }
    }
    const now = this.clock.now();
    await this.uow.transaction(async (tx) => {
      // A deleting VM holds its resources unless the reconciler released them meanwhile (a failed VM found gone).
      const holds = vm.releasedAt === null;
      const changes = { deletedAt: now, powerState: PowerState.Unknown, diskRef: null };
      const succeeded: Completion = { status: OperationStatus.Succeeded, attempts: progress.attempts() };
      const moved = await this.completeWith(tx, op, succeeded, now, VmEvent.Deleted, holds ? { ...changes, releasedAt: now } : changes);
      if (moved.applied) {
        if (vm.powerState === PowerState.Running) await this.usage.record(tx, vm, now, UsageEventKind.PowerOff);
        if (holds) await this.resources.giveBack(tx, vm, now);
        Object.assign(vm, { ...changes, status: VmStatus.Deleted, releasedAt: vm.releasedAt ?? now, updatedAt: moved.updatedAt });
      } else if (holds) {
        // released_at was set meanwhile: finish the delete without giving anything back twice.
        const finished = await this.vms.transition(tx, vm.id, VmEvent.Deleted, changes);
        if (finished.applied) Object.assign(vm, { ...changes, status: VmStatus.Deleted, updatedAt: finished.updatedAt });
      }
    });
    this.queue.kick();
    return { kind: 'succeeded', status: 200, vm };
  }

  /**
   * The VM may still exist on the hypervisor, so it keeps its resources; deleting it again retries. A VM whose
   * delete never reached its host (503: unreachable, or asked to retry) is as it was: a created one stays
   * created, a shelved one shelved. A shelved VM stays shelved after any failed delete (ShelvedDeleteFailed).
   */
  private async failDelete(op: OperationEntity, vm: VmEntity, error: HypervisorCallError, attempts: number): Promise<OperationResult> {
    const now = this.clock.now();
    const code = errorCodeFor(error.classified.kind);
    const from = op.params?.from;
    const notReached = code === 'hypervisor_unavailable';
    const reason = { statusReason: `delete failed after ${attempts} attempt(s): ${error.message}` };
    const [event, changes] = failedDeleteOutcome(from, notReached, reason);
    const failed: Completion = { status: OperationStatus.Failed, attempts, errorCode: code, errorMessage: error.message };
    await this.uow.transaction((tx) => this.completeWith(tx, op, failed, now, event, changes));
    this.logger.warn({ operationId: op.id, vmId: vm.id, code, attempts }, `delete failed: ${error.detail}`);
    return { kind: 'failed', error: errorFromOperation(code, error.message, vm.id) };
  }

  private async supersede(op: OperationEntity, why: string): Promise<OperationResult> {
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

  /**
   * Completes the operation and applies `event` to its VM, the two statements sent together (the operation's row
   * first: the lock order every outcome takes). Only while this worker still holds the operation's lease: otherwise
   * the whole outcome is dropped, the VM's change with it. `also` goes out with them, whether or not the VM
   * moves: a caller that passes it rolls the unit back when the VM did not.
   */
  private async completeWith(
    tx: Tx,
    op: OperationEntity,
    completion: Completion,
    now: Date,
    event: VmEvent,
    changes: VmChanges,
    also: (() => Promise<unknown>) | null = null,
  ): Promise<TransitionResult> {
    const [completed, moved, extra] = await together(tx, [
      () => this.ops.complete(tx, op.id, completion, now, op.leaseOwner),
      () => this.vms.transition(tx, op.vmId!, event, changes),
      also,
    ]);
    if (!settled(completed)) throw new LeaseLostError(op.id);
    const result = settled(moved)!;
    settled(extra);
    return result;
  }

  /** Completes the operation only while this worker still holds its lease; otherwise the whole outcome is dropped. */
  private async completeOwn(tx: Tx, op: OperationEntity, completion: Completion, now: Date): Promise<void> {
    if (!(await this.ops.complete(tx, op.id, completion, now, op.leaseOwner))) throw new LeaseLostError(op.id);
  }

  /** On the VM's own host (its URI), the VM an earlier attempt made, if it did. */
  private async findOnHypervisor(vmId: string, installationId: string, target: HypervisorTarget): Promise<VirtualMachine | null> {
    const all = await this.gateway.listVms([target]);
    return all.find((hv) => (hv.metadata ? hv.metadata.installationId === installationId && hv.metadata.vmId === vmId : platformVmIdFromLabels(hv.labels) === vmId)) ?? null;
  }

  /** Counts attempts and records each retry on the operation, so GET /operations shows progress. */
  private progressRecorder(op: OperationEntity): { observer: RetryObserver; attempts: () => number } {
    let attempts = op.attempts;
    const observer: RetryObserver = async (_failed, _delay, error) => {
      attempts++;
      await this.uow.transaction((tx) => this.ops.progress(tx, op.id, 'backoff', attempts, error.message));
    };
    return { observer, attempts: () => attempts };
  }
}

/**
 * Where a failed delete leaves its VM: a shelved one stays shelved (with the reason only if the call reached
 * the host), a created one the call never reached stays created as it was, anything else is failed.
 */
function failedDeleteOutcome(from: unknown, notReached: boolean, reason: { statusReason: string }): [VmEvent, { statusReason?: string }] {
  if (from === VmStatus.Shelved) return [VmEvent.ShelvedDeleteFailed, notReached ? {} : reason];
  if (notReached && from === VmStatus.Created) return [VmEvent.DeleteNotReached, {}];
  return [VmEvent.DeleteFailed, reason];
}
