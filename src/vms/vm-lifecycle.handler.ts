import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { GpuDevice, VirtualMachine } from '@vmplane/sdk';
import { Clock } from '../common/clock';
import { RandomSource } from '../common/random-source';
import { AppConfig } from '../config/app-config';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import { HypervisorCallError } from '../hypervisor/hypervisor-errors';
import { HypervisorGateway, RetryObserver } from '../hypervisor/hypervisor.gateway';
import { InstallationService } from '../installation/installation.service';
import { OperationAction, OperationEntity, OperationStatus } from '../operations/operation.entity';
import { OperationWaiter } from '../operations/operation-waiter';
import { OperationHandler, OperationWorker } from '../operations/operation-worker';
import { Completion, OperationsRepository } from '../operations/operations.repository';
import { UsersRepository } from '../users/users.repository';
import { CapacityQueueService } from './capacity-queue.service';
import { UsageEventKind } from './usage-event.entity';
import { UsageEventsRepository } from './usage-events.repository';
import { PowerState, VmEntity, VmStatus } from './vm.entity';
import { OperationResult, errorCodeFor, errorFromOperation } from './vm-outcome';
import type { RunContext } from './vm-operation-runner';
import { VmResources } from './vm-resources.service';
import { gpuDevicesOf } from './vm-gpu-devices';
import { VmEvent, VmAction, actionAllowed } from './vm-state-machine';
import { VmsRepository } from './vms.repository';
import { VmGuestSpecs } from './vm-guest-spec';

/** The worker lost its lease; the worker that holds it now records the outcome. */
class LeaseLostError extends Error {}

/** What a resize claimed at request time and what it gives back when it succeeds, as its operation's params record it. */
export interface ResizePlan {
  to: { cpuCores: number; memory: number; gpuCount: number; gpuModel: string | null };
  /** Claimed on the host and from the quota at request time (zero for a shrink). */
  grow: { cpuCores: number; memory: number; gpus: number };
  /** Given back when the resize succeeds. */
  shrink: { cpuCores: number; memory: number; gpus: number };
  /** GPUs bound at request time, with what the hypervisor needs to attach them. */
  addedGpus: { id: string; uuid: string; pciAddress: string }[];
  removedGpuIds: string[];
}

/** What each action does to a VM that is still in a state it may run from. */
const RUNS_FROM: Record<string, VmAction> = {
  [OperationAction.Stop]: VmAction.Stop,
  [OperationAction.Start]: VmAction.Start,
  [OperationAction.Reboot]: VmAction.Reboot,
  [OperationAction.Shelve]: VmAction.Shelve,
  [OperationAction.Resize]: VmAction.Resize,
};

/**
 * Carries out stop, start, reboot, shelve, unshelve and resize against the
 * hypervisor. As with create and delete, the intent (and any capacity an
 * unshelve or a growing resize needs) is recorded before this runs, and each
 * outcome is recorded in one transaction with the VM's status or power state,
 * its resources and the metering events.
 */
@Injectable()
export class VmLifecycleHandler implements OperationHandler, OnModuleInit {
  private readonly logger = new Logger(VmLifecycleHandler.name);

  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly fleet: FleetRepository,
    private readonly users: UsersRepository,
    private readonly resources: VmResources,
    private readonly usage: UsageEventsRepository,
    private readonly gateway: HypervisorGateway,
    private readonly installation: InstallationService,
    private readonly worker: OperationWorker,
    private readonly waiter: OperationWaiter,
    private readonly queue: CapacityQueueService,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly config: AppConfig,
    private readonly guests: VmGuestSpecs,
  ) {}

  onModuleInit(): void {
    this.worker.register(
      [OperationAction.Stop, OperationAction.Start, OperationAction.Reboot, OperationAction.Shelve, OperationAction.Unshelve, OperationAction.Resize],
      this,
    );
  }

  async execute(op: OperationEntity, context?: RunContext): Promise<void> {
    let result: OperationResult;
    try {
      const vm = context?.vm && context.vm.id === op.vmId ? context.vm : await this.uow.read((tx) => this.vms.findById(tx, op.vmId!, { gpus: true, host: true }));
      result = await this.run(op, vm);
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.logger.warn({ operationId: op.id }, 'lease lost; the worker that holds it now records the outcome');
        return;
      }
      this.logger.error({ err: error, operationId: op.id }, 'operation could not be recorded; it will be resumed');
      result = { kind: 'fault', error };
    }
    this.waiter.notify(op.id, result);
  }

  private async run(op: OperationEntity, vm: VmEntity | null): Promise<OperationResult> {
    if (!vm) return this.fail(op, null, 'operation_superseded', 'Operation superseded: the VM is gone');
    if (op.action === OperationAction.Unshelve) {
      if (vm.status !== VmStatus.Shelved) return this.fail(op, null, 'operation_superseded', `Operation superseded: the VM is ${vm.status}`);
      return this.unshelve(op, vm);
    }
    // The state may have moved since the request (e.g. the reconciler found the VM gone); the outcome then does not apply.
    if (!actionAllowed(RUNS_FROM[op.action], vm.status, vm.powerState) && !(op.attempts > 1 && vm.status === VmStatus.Created)) {
      return this.fail(op, vm, 'operation_superseded', `Operation superseded: the VM is ${vm.status} and ${vm.powerState}`);
    }
    const progress = this.progressRecorder(op);
    const target = await this.guests.targetOf(vm);
    const call = (): Promise<unknown> => {
      const random = () => this.random.next();
      switch (op.action) {
        case OperationAction.Stop:
          return this.gateway.stopVm(vm.hypervisorId!, target, { timeoutSeconds: this.config.stopTimeoutSeconds }, random, progress.observer);
        case OperationAction.Start:
          return this.gateway.startVm(vm.hypervisorId!, target, random, progress.observer);
        case OperationAction.Reboot:
          return this.gateway.rebootVm(vm.hypervisorId!, target, { hard: op.params?.hard === true }, random, progress.observer);
        case OperationAction.Shelve:
          return this.gateway.shelveVm(vm.hypervisorId!, target, random, progress.observer);
        default:
          return this.resizeCall(vm, op.params as unknown as ResizePlan, progress.observer);
      }
    };
    let answer: unknown;
    try {
      answer = await call();
    } catch (error) {
      if (!(error instanceof HypervisorCallError)) throw error;
      return this.failCall(op, vm, error, progress.attempts());
    }
    return this.succeed(op, vm, answer, progress.attempts());
  }

  private async succeed(op: OperationEntity, vm: VmEntity, answer: unknown, attempts: number): Promise<OperationResult> {
    const now = this.clock.now();
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Succeeded, attempts }, now);
      switch (op.action) {
        case OperationAction.Stop:
          await this.power(tx, vm, PowerState.ShutOff, now);
          break;
        case OperationAction.Start:
        case OperationAction.Reboot:
          await this.power(tx, vm, PowerState.Running, now);
          break;
        case OperationAction.Shelve: {
          const diskRef = answer as VmEntity['diskRef'];
          const moved = await this.vms.transition(tx, vm.id, VmEvent.Shelved, { diskRef, powerState: PowerState.ShutOff, releasedAt: now });
          if (!moved.applied) return;
          if (vm.powerState === PowerState.Running) await this.usage.record(tx, vm, now, UsageEventKind.PowerOff);
          await this.resources.giveBack(tx, vm, now);
          Object.assign(vm, { status: VmStatus.Shelved, diskRef, powerState: PowerState.ShutOff, releasedAt: now, updatedAt: moved.updatedAt });
          break;
        }
        default:
          await this.finishResize(tx, vm, op.params as unknown as ResizePlan, true, now);
      }
    });
    if (op.action === OperationAction.Shelve || op.action === OperationAction.Resize) this.queue.kick();
    return { kind: 'succeeded', status: 200, vm };
  }

  /** The VM is placed again from its kept disk; the capacity was claimed when the unshelve was recorded (or handed out by the queue). */
  private async unshelve(op: OperationEntity, vm: VmEntity): Promise<OperationResult> {
    const progress = this.progressRecorder(op);
    const installationId = await this.installation.id();
    let created: VirtualMachine;
    try {
      created = await this.gateway.unshelveVm(
        { ...(await this.guests.requestOf(vm, installationId)), diskRef: vm.diskRef! },
        () => this.random.next(),
        progress.observer,
      );
    } catch (error) {
      if (!(error instanceof HypervisorCallError)) throw error;
      return this.failCall(op, vm, error, progress.attempts());
    }
    const now = this.clock.now();
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Succeeded, attempts: progress.attempts() }, now);
      const moved = await this.vms.transition(tx, vm.id, VmEvent.Unshelved, { hypervisorId: created.id, diskRef: null, powerState: PowerState.Running });
      if (!moved.applied) return;
      await this.usage.record(tx, vm, now, UsageEventKind.PowerOn);
      Object.assign(vm, { status: VmStatus.Created, hypervisorId: created.id, diskRef: null, powerState: PowerState.Running, updatedAt: moved.updatedAt });
    });
    return { kind: 'succeeded', status: 200, vm };
  }

  /** A failed action leaves the VM as it was, except that capacity claimed for it (unshelve, growing resize) goes back. */
  private async failCall(op: OperationEntity, vm: VmEntity, error: HypervisorCallError, attempts: number): Promise<OperationResult> {
    const code = errorCodeFor(error.classified.kind);
    const now = this.clock.now();
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Failed, attempts, errorCode: code, errorMessage: error.message }, now);
      if (op.action === OperationAction.Unshelve) {
        // The host it was placed on did not answer: the next placements go elsewhere until a reconciliation pass finds it answering.
        if (error.classified.kind === 'host_unreachable' && vm.hostId) await this.fleet.markUnreachable(tx, [vm.hostId], now);
        await this.resources.release(tx, vm, now);
      }
      if (op.action === OperationAction.Resize) await this.finishResize(tx, vm, op.params as unknown as ResizePlan, false, now);
    });
    this.logger.warn({ operationId: op.id, vmId: vm.id, code, attempts }, `${op.action} failed: ${error.detail}`);
    if (op.action === OperationAction.Unshelve || op.action === OperationAction.Resize) this.queue.kick();
    return { kind: 'failed', error: errorFromOperation(code, error.message, vm.id) };
  }

  private async fail(op: OperationEntity, vm: VmEntity | null, code: string, message: string): Promise<OperationResult> {
    await this.uow.transaction(async (tx) => {
      await this.completeOwn(tx, op, { status: OperationStatus.Failed, attempts: op.attempts, errorCode: code, errorMessage: message }, this.clock.now());
      if (vm && op.action === OperationAction.Resize) await this.finishResize(tx, vm, op.params as unknown as ResizePlan, false, this.clock.now());
    });
    return { kind: 'failed', error: errorFromOperation(code, message, op.vmId) };
  }

  private async power(tx: Tx, vm: VmEntity, powerState: PowerState, now: Date): Promise<void> {
    const before = vm.powerState;
    vm.updatedAt = await this.vms.setPowerState(tx, vm.id, powerState);
    vm.powerState = powerState;
    if (before !== PowerState.Running && powerState === PowerState.Running) await this.usage.record(tx, vm, now, UsageEventKind.PowerOn);
    if (before === PowerState.Running && powerState === PowerState.ShutOff) await this.usage.record(tx, vm, now, UsageEventKind.PowerOff);
  }

  private async resizeCall(vm: VmEntity, plan: ResizePlan, observer: RetryObserver): Promise<VirtualMachine> {
    const kept = this.devicesOf(vm).filter((d) => !plan.removedGpuIds.includes(this.gpuIdOf(vm, d.uuid)));
    const gpuDevices = [...kept, ...plan.addedGpus.map((g) => ({ uuid: g.uuid, pciAddress: g.pciAddress }))];
    return this.gateway.resizeVm(vm.hypervisorId!, await this.guests.targetOf(vm), { cpuCores: plan.to.cpuCores, memory: plan.to.memory, gpuDevices }, () => this.random.next(), observer);
  }

  private gpuIdOf(vm: VmEntity, uuid: string): string {
    return (vm.allocations ?? []).find((a) => a.gpu!.uuid === uuid)!.gpuId;
  }

  /**
   * A resize's bookkeeping when it ends: on success the VM takes its new size
   * and what it shrank by goes back; on failure what it grew by goes back.
   */
  private async finishResize(tx: Tx, vm: VmEntity, plan: ResizePlan, succeeded: boolean, now: Date): Promise<void> {
    const back = succeeded ? plan.shrink : plan.grow;
    const gpuIds = succeeded ? plan.removedGpuIds : plan.addedGpus.map((g) => g.id);
    if (vm.hostId && (back.cpuCores > 0 || back.memory > 0)) {
      await this.fleet.releaseHost(tx, vm.hostId, { cpuCores: back.cpuCores, memoryMib: back.memory, diskGib: 0 });
    }
    await this.fleet.unbindSomeGpus(tx, vm.id, gpuIds, now);
    if (back.cpuCores > 0 || back.memory > 0 || back.gpus > 0) {
      await this.users.release(tx, vm.ownerId, { vcpus: back.cpuCores, memoryMib: back.memory, gpuMilli: back.gpus * 1000, vms: 0 });
    }
    if (back.gpus > 0) await this.usage.record(tx, { ...vm, gpuCount: back.gpus }, now, UsageEventKind.GpuRelease);
    if (succeeded) {
      vm.updatedAt = await this.vms.setSize(tx, vm.id, plan.to);
      Object.assign(vm, { cpuCores: plan.to.cpuCores, memory: plan.to.memory, gpuCount: plan.to.gpuCount, gpuModel: plan.to.gpuModel });
    }
  }

  private devicesOf(vm: VmEntity): GpuDevice[] {
    return (vm.allocations ?? []).filter((a) => a.releasedAt === null).map((a) => ({ uuid: a.gpu!.uuid, pciAddress: a.gpu!.pciAddress }));
  }

  private async completeOwn(tx: Tx, op: OperationEntity, completion: Completion, now: Date): Promise<void> {
    if (!(await this.ops.complete(tx, op.id, completion, now, op.leaseOwner))) throw new LeaseLostError();
  }

  private progressRecorder(op: OperationEntity): { observer: RetryObserver; attempts: () => number } {
    let attempts = op.attempts;
    const observer: RetryObserver = async (_failed, _delay, error) => {
      attempts++;
      await this.uow.transaction((tx) => this.ops.progress(tx, op.id, 'backoff', attempts, error.message));
    };
    return { observer, attempts: () => attempts };
  }
}
