import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import { FleetRepository } from '../fleet/fleet.repository';
import type { HostShape } from '../fleet/feasibility';
import { PlacementService, withoutHosts } from '../fleet/placement.service';
import { IdGenerator } from '../common/id-generator';
import { OperationAction, OperationEntity, OperationStatus } from '../operations/operation.entity';
import { OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import type { PlacementRequest } from '../scheduler/scheduler.types';
import { heldForWaiting, queueKeyOf } from './capacity-queue';
import { VmEntity, VmStatus } from './vm.entity';
import { VmResources } from './vm-resources.service';
import { VmEvent } from './vm-state-machine';
import { VmsRepository } from './vms.repository';

/** A PostgreSQL advisory lock key: one replica hands out queued capacity at a time. */
const QUEUE_LOCK_KEY = 740_421_980;
/** How often the queue is looked at besides when capacity frees here: frees in other replicas, hosts back to active, deadlines. */
const POLL_MS = 1000;

/** The request a waiting operation stands for, as its params record it. */
export function waitingRequest(op: OperationEntity): PlacementRequest {
  return (op.params as { request: PlacementRequest }).request;
}

/**
 * The capacity queue. A create (or unshelve) that nothing fits waits here, in
 * the queue of its GPU model and region, holding its quota but no host.
 * Whenever capacity may have freed — a delete, a shelve, a failure that gave
 * resources back, a host back to active, another replica's work (polling) —
 * the queue hands capacity out in arrival order: each waiting request is
 * placed if it fits, and a later one may pass one that does not fit only onto
 * hosts none of the earlier waiting requests could ever use (mayPassWaiting),
 * so the head never starves and nobody behind it waits for nothing. New
 * requests obey the same rule (admits). Waiting operations are rows, so the
 * queue survives restarts and is shared by replicas; one replica at a time
 * drains it (an advisory lock).
 */
@Injectable()
export class CapacityQueueService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CapacityQueueService.name);
  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly ops: OperationsRepository,
    private readonly vms: VmsRepository,
    private readonly fleet: FleetRepository,
    private readonly placement: PlacementService,
    private readonly resources: VmResources,
    private readonly worker: OperationWorker,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.draining;
  }

  /** Puts a recorded operation in the queue of its request; its VM already holds the request's quota. */
  enqueue(op: OperationEntity, request: PlacementRequest, waitSeconds: number): void {
    Object.assign(op, {
      status: OperationStatus.WaitingForCapacity,
      stage: 'waiting_for_capacity',
      attempts: 0,
      leaseOwner: null,
      leaseExpiresAt: null,
      startedAt: null,
      queueKey: queueKeyOf(request),
      deadlineAt: new Date(this.clock.now().getTime() + waitSeconds * 1000),
      params: { ...(op.params ?? {}), request },
    });
  }

  /** 1 for the head of its queue. */
  async position(tx: Tx, op: OperationEntity): Promise<number> {
    return (await this.ops.countWaitingBefore(tx, op.queueKey!, op.id)) + 1;
  }

  /**
   * The hosts a request arriving now must leave alone: those a request already
   * waiting could use (capacity goes in arrival order), and `alsoLeaveOut` (hosts
   * the request itself found full). Only `alsoLeaveOut` — one cheap query — when
   * nothing waits.
   */
  async heldHosts(tx: Tx, alsoLeaveOut?: ReadonlySet<string>): Promise<ReadonlySet<string>> {
    if (!(await this.ops.anyWaiting(tx))) return alsoLeaveOut ?? new Set();
    return withoutHosts(heldForWaiting(await this.fleet.shapes(tx), (await this.ops.listWaiting(tx)).map(waitingRequest)), alsoLeaveOut);
  }

  /** Capacity may have freed: look at the queue soon (once, however many call). */
  kick(): void {
    if (this.draining) {
      this.again = true;
      return;
    }
    // One autocommit read when nothing waits (the common case: every delete kicks), rather than a
    // dedicated connection, the advisory lock and its release around a drain that finds nothing.
    this.draining = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.uow.read((tx) => this.ops.anyWaiting(tx)))
      .then((waiting) => (waiting ? this.uow.exclusively(QUEUE_LOCK_KEY, () => this.drain()) : null))
      .then(() => undefined)
      .catch((error: unknown) => this.logger.error({ err: error }, 'handing out queued capacity failed'))
      .finally(() => {
        this.draining = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async poll(): Promise<void> {
    try {
      if (await this.uow.read((tx) => this.ops.anyWaiting(tx))) this.kick();
    } catch (error) {
      this.logger.error({ err: error }, 'looking at the capacity queue failed');
    }
  }

  /** Hands capacity to waiting requests in arrival order; expires those past their deadline. */
  private async drain(): Promise<void> {
    const waiting = await this.uow.read((tx) => this.ops.listWaiting(tx));
    if (waiting.length === 0) return;
    const shapes = await this.uow.read((tx) => this.fleet.shapes(tx));
    const blocked: PlacementRequest[] = [];
    let placed = 0;
    for (const op of waiting) {
      if (op.deadlineAt && op.deadlineAt.getTime() <= this.clock.now().getTime()) {
        await this.expire(op);
        continue;
      }
      const request = waitingRequest(op);
      if (await this.tryPlace(op, request, blocked, shapes)) placed++;
      else blocked.push(request);
    }
    if (placed > 0) this.worker.kick();
  }

  private async tryPlace(op: OperationEntity, request: PlacementRequest, blocked: PlacementRequest[], shapes: HostShape[]): Promise<boolean> {
    return this.uow.transaction(async (tx) => {
      // Only hosts none of the earlier, still waiting requests could use: taking room there delays none of them.
      const plan = await this.placement.plan(tx, request, true, heldForWaiting(shapes, blocked));
      if (!plan) return false;
      const vm = await this.vms.findById(tx, op.vmId!);
      if (!vm || !(await this.ops.release(tx, op.id))) return false;
      await this.vms.place(tx, vm.id, plan.hostId, plan.region, plan.gpus[0]?.model ?? plan.slotClaim?.gpu.model ?? vm.gpuModel);
      Object.assign(vm, { hostId: plan.hostId, region: plan.region });
      await this.resources.claimPlacement(tx, vm, plan, request, plan.gpus.map(() => this.ids.next()));
      this.logger.log({ operationId: op.id, vmId: vm.id, host: plan.hostName }, `queued ${op.action} placed`);
      return true;
    }).catch((error: unknown) => {
      // A stale plan (another replica placed meanwhile) is tried again at the next look.
      this.logger.warn({ err: error, operationId: op.id }, 'placing a queued request failed; it stays in the queue');
      return false;
    });
  }

  /** The wait is over: the operation fails with insufficient_capacity and its quota goes back; a create's VM fails. */
  private async expire(op: OperationEntity): Promise<void> {
    const now = this.clock.now();
    const reason = `insufficient capacity: nothing fit within the ${op.action === OperationAction.Unshelve ? 'unshelve' : 'create'}'s wait for capacity`;
    await this.uow.transaction(async (tx) => {
      if (!(await this.ops.endWaiting(tx, op.id, 'insufficient_capacity', reason, now))) return;
      const vm = await this.vms.findById(tx, op.vmId!);
      if (!vm) return;
      if (vm.status === VmStatus.Provisioning) {
        const moved = await this.vms.transition(tx, vm.id, VmEvent.ProvisionFailed, { statusReason: reason, releasedAt: now });
        if (moved.applied) await this.resources.giveBack(tx, vm, now);
      } else {
        await this.resources.release(tx, vm, now);
      }
    });
  }

  /** A request cancelled by DELETE leaves the queue, giving its quota back; returns the VM as it is now, or null if it had left. */
  async cancel(tx: Tx, op: OperationEntity, vm: VmEntity, now: Date): Promise<boolean> {
    if (!(await this.ops.endWaiting(tx, op.id, 'cancelled', 'Cancelled by a delete while waiting for capacity', now))) return false;
    await this.resources.release(tx, vm, now);
    return true;
  }
}
