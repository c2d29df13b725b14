import { Injectable } from '@nestjs/common';
import type { AuthUser } from '../auth/auth-user';
import { Clock } from '../common/clock';
import { ConflictError } from '../common/domain-errors';
import { IdGenerator } from '../common/id-generator';
import { AppConfig } from '../config/app-config';
import { UnitOfWork, type Tx } from '../database/unit-of-work';
import type { KeyClaim } from '../idempotency/idempotency.repository';
import { OperationAction, OperationEntity, OperationStatus, isFinished } from '../operations/operation.entity';
import { OperationWaiter } from '../operations/operation-waiter';
import { Lease, OperationWorker } from '../operations/operation-worker';
import { OperationsRepository } from '../operations/operations.repository';
import { VmResponseDto } from './dto/vm-response.dto';
import { VmEntity } from './vm.entity';
import { VmViewer, toVmResponse } from './vm.mapper';
import { OperationResult, VmOutcome, errorFromOperation } from './vm-outcome';
import { VmsRepository } from './vms.repository';

export interface RequestOptions {
  /** Prefer: respond-async */
  respondAsync: boolean;
  /** Prefer: wait=N, in seconds */
  waitSeconds: number | null;
  idempotencyKey: string | null;
  requestId: string | null;
}

/** What a request hands to the operation it starts itself. */
export interface RunContext {
  vm: VmEntity;
  /** False when the request carried no Idempotency-Key, so there is no stored response to write. */
  idempotent: boolean;
  /** Who asked: the stored response to replay is written for them. */
  viewer: VmViewer;
}

/** An operation recorded with its VM, ready to run (with a worker lease) or to wait for a worker. */
export interface Started {
  kind: 'started';
  vm: VmEntity;
  op: OperationEntity;
  lease: Lease | null;
}

export function viewerOf(user: AuthUser): VmViewer {
  return { seesFleet: user.role === 'admin' };
}

/**
 * What every VM operation shares once its intent is recorded: starting it on
 * this worker or leaving it to any worker, answering at once (202) or waiting
 * for the outcome within the caller's bound, and following an operation that
 * another request (or replica) started.
 */
@Injectable()
export class VmOperationRunner {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly vms: VmsRepository,
    private readonly ops: OperationsRepository,
    private readonly worker: OperationWorker,
    private readonly waiter: OperationWaiter,
    private readonly ids: IdGenerator,
    private readonly clock: Clock,
    private readonly config: AppConfig,
  ) {}

  /** Logs a change made in the request's own transaction, with nothing for a worker to do: a succeeded operation. */
  async recordFinished(tx: Tx, action: OperationAction, vmId: string, user: AuthUser, options: RequestOptions, at: Date, params: Record<string, unknown> | null = null): Promise<OperationEntity> {
    const op = this.newOperation(action, vmId, user, options, null, params);
    // It began and ended at `at`, in the same transaction as the change it logs.
    Object.assign(op, { status: OperationStatus.Succeeded, stage: 'done', startedAt: at, finishedAt: at, createdAt: at, updatedAt: at });
    await this.ops.insert(tx, op);
    return op;
  }

  /** A new operation; with a worker lease it starts running here at once, otherwise it waits as pending. */
  newOperation(action: OperationAction, vmId: string, user: AuthUser, options: RequestOptions, lease: Lease | null, params: Record<string, unknown> | null = null): OperationEntity {
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
      params,
      deadlineAt: null,
      queueKey: null,
    });
  }

  async dispatch(step: Started, user: AuthUser, options: RequestOptions): Promise<VmOutcome> {
    if (step.lease) {
      const context: RunContext = { vm: step.vm, idempotent: options.idempotencyKey !== null, viewer: viewerOf(user) };
      this.worker.start(step.op, context);
    } else this.worker.kick();
    if (options.respondAsync) return this.accepted(step.vm, step.op.id, user, options, false);
    return this.awaitOperation(step.op.id, step.vm, user, options, false);
  }

  async awaitOperation(operationId: string, vm: VmEntity, user: AuthUser, options: RequestOptions, replayed: boolean): Promise<VmOutcome> {
    if (options.respondAsync) return this.accepted(vm, operationId, user, options, replayed);
    const waitMs = 1000 * Math.min(options.waitSeconds ?? this.config.defaultWaitSeconds, this.config.maxWaitSeconds);
    const result = await this.waiter.wait<OperationResult>(operationId, waitMs, () => this.resultFromDatabase(operationId));
    if (!result) {
      const current = await this.uow.read((tx) => this.vms.findVisible(tx, vm.id, null, { gpus: true, host: true }));
      return this.accepted(current ?? vm, operationId, user, options, replayed);
    }
    if (result.kind === 'succeeded') return { kind: 'done', status: result.status, vm: toVmResponse(result.vm, viewerOf(user)), replayed };
    throw result.error;
  }

  accepted(vm: VmEntity, operationId: string, user: AuthUser, options: RequestOptions, replayed: boolean, extra: Partial<Extract<VmOutcome, { kind: 'accepted' }>> = {}): VmOutcome {
    return { kind: 'accepted', vm: toVmResponse(vm, viewerOf(user)), operationId, asyncRequested: options.respondAsync, replayed, ...extra };
  }

  /** A repeated Idempotency-Key: replay the stored response, or follow the first request's operation. */
  async replay(claim: Extract<KeyClaim, { kind: 'seen' }>, user: AuthUser, options: RequestOptions): Promise<VmOutcome> {
    if (claim.responseStatus !== null && claim.responseBody) {
      return { kind: 'done', status: claim.responseStatus as 200 | 201, vm: JSON.parse(claim.responseBody) as VmResponseDto, replayed: true };
    }
    if (!claim.operationId || !claim.vmId) {
      throw new ConflictError('request_in_progress', 'A request with this Idempotency-Key is still being processed');
    }
    const { op, vm } = await this.uow.read(async (tx) => ({
      op: await this.ops.findById(tx, claim.operationId!),
      vm: await this.vms.findVisible(tx, claim.vmId!, user.role === 'admin' ? null : user.id, { gpus: true, host: user.role === 'admin' }),
    }));
    if (op && op.status === OperationStatus.Failed) throw errorFromOperation(op.errorCode, op.errorMessage, op.vmId);
    if (op && op.status === OperationStatus.Succeeded && vm) {
      return { kind: 'done', status: successStatus(op.action), vm: toVmResponse(vm, viewerOf(user)), replayed: true };
    }
    return this.awaitOperation(claim.operationId, vm!, user, options, true);
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
      return { kind: 'succeeded', status: successStatus(op.action), vm: vm! };
    });
  }
}

/** A create answers 201; every other finished operation 200. */
export function successStatus(action: OperationAction): 200 | 201 {
  return action === OperationAction.Create ? 201 : 200;
}
