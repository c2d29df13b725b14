import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Clock } from '../common/clock';
import { Semaphore } from '../common/semaphore';
import { AppConfig } from '../config/app-config';
import { UnitOfWork } from '../database/unit-of-work';
import type { OperationEntity } from './operation.entity';
import { OperationsRepository } from './operations.repository';

/**
 * Carries out one claimed operation. Must not throw; it records its own
 * outcome. `context` is what the request that recorded the operation already
 * knows (e.g. the VM row it just wrote); operations claimed from the database
 * have none and load what they need.
 */
export interface OperationHandler {
  execute(op: OperationEntity, context?: unknown): Promise<void>;
}

export interface Lease {
  owner: string;
  expiresAt: Date;
}

/** How long shutdown waits for in-flight hypervisor calls to finish and be recorded. */
const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Runs operations under leases, with at most WORKER_CONCURRENCY in flight.
 *
 * Requests that find a free slot start their operation at once (fast path);
 * otherwise the operation waits as `pending` and any worker claims it. A
 * worker renews its leases on a heartbeat; if it dies, the leases lapse and
 * another worker (or this one, restarted) claims the operations again.
 */
@Injectable()
export class OperationWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly logger = new Logger(OperationWorker.name);
  private readonly slots: Semaphore;
  private readonly inFlight = new Set<Promise<void>>();
  /** Who carries out each kind of operation; an operation of a kind nobody registered is left to fail loudly. */
  private readonly handlers = new Map<string, OperationHandler>();
  private stopping = false;
  private wake: (() => void) | null = null;
  private kicked = false;
  /**
   * Set when pending work may be waiting for a slot here (a request found no
   * free slot, or a claim filled every free one). A finished operation looks
   * for more only then: otherwise every fast-path finish would cost a claim
   * query that finds nothing (measured in docs/benchmarks.md). Work
   * recorded by other replicas, or whose lease lapsed, is found by polling.
   */
  private backlog = false;
  private heartbeat: NodeJS.Timeout | null = null;
  private loopDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: AppConfig,
    private readonly uow: UnitOfWork,
    private readonly ops: OperationsRepository,
    private readonly clock: Clock,
  ) {
    this.slots = new Semaphore(config.workerConcurrency);
  }

  register(actions: readonly string[], handler: OperationHandler): void {
    for (const action of actions) this.handlers.set(action, handler);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.uow.isPostgres) {
      // SQLite serves one process: whatever the previous process held, nobody holds now.
      const released = await this.uow.transaction((tx) => this.ops.releaseAllLeases(tx));
      if (released > 0) this.logger.log(`Released ${released} operation lease(s) left by the previous process`);
    }
    const interval = Math.max(1000, Math.floor(this.config.operationLeaseMs / 3));
    this.heartbeat = setInterval(() => void this.renewLeases(), interval);
    this.heartbeat.unref();
    this.loopDone = this.loop();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.loopDone;
    const drained = Promise.all([...this.inFlight]);
    await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, DRAIN_TIMEOUT_MS).unref())]);
  }

  /**
   * Takes a slot for an operation about to be recorded, if one is free now.
   * The caller must either start() the operation after commit or unreserve().
   */
  tryReserve(now: Date): Lease | null {
    if (this.stopping || !this.slots.tryAcquire()) return null;
    return { owner: this.id, expiresAt: new Date(now.getTime() + this.config.operationLeaseMs) };
  }

  unreserve(): void {
    this.slots.release();
  }

  /** Runs an operation this worker holds a slot and a lease for. */
  start(op: OperationEntity, context?: unknown): void {
    const handler = this.handlers.get(op.action);
    if (!handler) throw new Error(`No handler registered for ${op.action} operations`);
    const run = handler
      .execute(op, context)
      .catch((error) => this.logger.error({ err: error, operationId: op.id }, 'operation handler threw'))
      .finally(() => {
        this.slots.release();
        this.inFlight.delete(run);
        if (this.backlog) this.kick();
      });
    this.inFlight.add(run);
  }

  /** Asks the loop to look for pending work now rather than at the next poll. */
  kick(): void {
    this.backlog = true;
    this.kicked = true;
    this.wake?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.claimAndStart();
      } catch (error) {
        this.logger.error({ err: error }, 'claiming operations failed');
      }
      if (!this.kicked) await this.sleep(this.config.operationPollMs);
      this.kicked = false;
    }
  }

  private async claimAndStart(): Promise<void> {
    const free = this.slots.free;
    if (free <= 0 || this.handlers.size === 0) return;
    const now = this.clock.now();
    const leaseUntil = new Date(now.getTime() + this.config.operationLeaseMs);
    // Cleared before the query, so a kick that arrives while it runs is kept.
    this.backlog = false;
    const claimed = await this.uow.transaction((tx) => this.ops.claim(tx, this.id, now, leaseUntil, free, this.uow.isPostgres));
    if (claimed.length === free) this.backlog = true;
    for (const op of claimed) {
      // Slots may have gone to fast-path requests meanwhile; the lease keeps the claim while we wait.
      await this.slots.acquire();
      if (op.attempts > 1) this.logger.log(`Resuming operation ${op.id} (${op.action}, attempt ${op.attempts})`);
      this.start(op);
    }
  }

  private async renewLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    try {
      const until = new Date(this.clock.now().getTime() + this.config.operationLeaseMs);
      await this.uow.transaction((tx) => this.ops.renewLeases(tx, this.id, until));
    } catch (error) {
      this.logger.error({ err: error }, 'renewing operation leases failed');
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }
}
