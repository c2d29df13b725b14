import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { PreparedStatements } from '../database/prepared-statements';
import { on } from '../database/repository-on';
import type { Tx } from '../database/unit-of-work';
import { OPEN_STATUSES, OperationEntity, OperationStatus, UNFINISHED_STATUSES } from './operation.entity';

/**
 * A condition on an operation's status with the statuses written into the
 * SQL, not bound. The log is never pruned, so its partial indexes
 * (ix_operations_open_lease, ix_operations_waiting, uq_operations_open_vm)
 * are what keeps these lookups from reading every operation ever run, and
 * SQLite uses a partial index only when the query repeats the index's own
 * WHERE term: with `status IN (?, ?)` it reads the whole table, and with
 * `status = ?` it compiles the statement again on every execution to
 * check the bound value. The values are the enum's own constants.
 */
function statusIn(column: string, statuses: readonly OperationStatus[]): string {
  const list = statuses.map((status) => `'${status}'`).join(', ');
  return statuses.length === 1 ? `${column} = ${list}` : `${column} IN (${list})`;
}

const WAITING = statusIn('o.status', [OperationStatus.WaitingForCapacity]);

export interface Completion {
  status: OperationStatus.Succeeded | OperationStatus.Failed;
  attempts: number;
  errorCode?: string | null;
  errorMessage?: string | null;
}

/** The operation log. Rows are inserted and updated, never deleted. */
@Injectable()
export class OperationsRepository {
  constructor(
    @InjectRepository(OperationEntity) private readonly ops: Repository<OperationEntity>,
    private readonly statements: PreparedStatements,
  ) {}

  async insert(tx: Tx, op: OperationEntity): Promise<void> {
    await this.statements.insert(tx, this.ops.target, op);
  }

  async findById(tx: Tx, id: string): Promise<OperationEntity | null> {
    const [op] = await this.statements.select(tx, this.ops.target, 'o', 'byId', { id }, (qb) => qb.where('o.id = :id'));
    return op ?? null;
  }

  /** Newest first, keyset-paginated by id. */
  listByVm(tx: Tx, vmId: string, beforeId: string | null, limit: number): Promise<OperationEntity[]> {
    const qb = on(this.ops, tx).createQueryBuilder('o').where('o.vmId = :vmId', { vmId });
    if (beforeId) qb.andWhere('o.id < :beforeId', { beforeId });
    return qb.orderBy('o.id', 'DESC').limit(limit).getMany();
  }

  /** Newest first; with `ownerId`, only operations on that user's VMs. */
  listByOwner(tx: Tx, ownerId: string | null, beforeId: string | null, limit: number): Promise<OperationEntity[]> {
    const qb = on(this.ops, tx).createQueryBuilder('o');
    if (ownerId) qb.innerJoin('o.vm', 'v', 'v.ownerId = :ownerId', { ownerId });
    if (beforeId) qb.andWhere('o.id < :beforeId', { beforeId });
    return qb.orderBy('o.id', 'DESC').limit(limit).getMany();
  }

  /** The unfinished operation of a VM — pending, running or waiting for capacity — if any (the database allows at most one). */
  async findOpenForVm(tx: Tx, vmId: string): Promise<OperationEntity | null> {
    const [op] = await this.statements.select(tx, this.ops.target, 'o', 'openForVm', { vmId }, (qb) =>
      qb.where('o.vmId = :vmId').andWhere(statusIn('o.status', UNFINISHED_STATUSES)).orderBy('o.id', 'DESC').limit(1),
    );
    return op ?? null;
  }

  /** The VMs that have an unfinished operation: theirs decides their fate, not the reconciler. */
  async vmIdsWithOpenOperations(tx: Tx): Promise<Set<string>> {
    const rows = await on(this.ops, tx)
      .createQueryBuilder('o')
      .select('o.vmId', 'vm_id')
      .where(statusIn('o.status', UNFINISHED_STATUSES))
      .andWhere('o.vmId IS NOT NULL')
      .getRawMany<{ vm_id: string }>();
    return new Set(rows.map((r) => r.vm_id));
  }

  /** Every operation waiting for capacity, in arrival order (ids are time-ordered). */
  listWaiting(tx: Tx): Promise<OperationEntity[]> {
    return on(this.ops, tx)
      .createQueryBuilder('o')
      .where(WAITING)
      .orderBy('o.id')
      .getMany();
  }

  /** Whether anything waits for capacity: the cheap check on the create path. */
  async anyWaiting(tx: Tx): Promise<boolean> {
    const found = await this.statements.raw(tx, this.ops.target, 'o', 'anyWaiting', {}, (qb) =>
      qb.select('o.id', 'id').where(WAITING).limit(1),
    );
    return found.length > 0;
  }

  /** Requests in the same queue that arrived before this one: the position is this plus one. */
  countWaitingBefore(tx: Tx, queueKey: string, id: string): Promise<number> {
    return on(this.ops, tx)
      .createQueryBuilder('o')
      .where(WAITING)
      .andWhere('o.queueKey = :queueKey', { queueKey })
      .andWhere('o.id < :id', { id })
      .getCount();
  }

  /** A waiting operation whose capacity was just claimed becomes pending, for a worker to run; false if it had left the queue. */
  async release(tx: Tx, id: string): Promise<boolean> {
    const result = await on(this.ops, tx)
      .createQueryBuilder()
      .update()
      .set({ status: OperationStatus.Pending, stage: 'queued', deadlineAt: null })
      .where('id = :id', { id })
      .andWhere(statusIn('status', [OperationStatus.WaitingForCapacity]))
      .updateEntity(false)
      .execute();
    return result.affected === 1;
  }

  /** Ends a waiting operation (expired or cancelled); false if it had already left the queue. */
  async endWaiting(tx: Tx, id: string, errorCode: string, errorMessage: string, now: Date): Promise<boolean> {
    const result = await on(this.ops, tx)
      .createQueryBuilder()
      .update()
      .set({ status: OperationStatus.Failed, stage: 'done', errorCode, errorMessage, finishedAt: now, deadlineAt: null })
      .where('id = :id', { id })
      .andWhere(statusIn('status', [OperationStatus.WaitingForCapacity]))
      .updateEntity(false)
      .execute();
    return result.affected === 1;
  }

  /**
   * Claims up to `limit` operations that nobody holds: pending ones, and
   * running ones whose lease has lapsed (their worker died). On PostgreSQL
   * SKIP LOCKED lets several workers claim side by side; SQLite has a single
   * writer and no row locks.
   */
  async claim(tx: Tx, owner: string, now: Date, leaseUntil: Date, limit: number, skipLocked: boolean): Promise<OperationEntity[]> {
    const select = on(this.ops, tx)
      .createQueryBuilder('o')
      .where(statusIn('o.status', OPEN_STATUSES))
      .andWhere('(o.leaseExpiresAt IS NULL OR o.leaseExpiresAt < :now)', { now })
      .orderBy('o.createdAt')
      .limit(limit);
    if (skipLocked) select.setLock('pessimistic_write').setOnLocked('skip_locked');
    const claimed = await select.getMany();
    if (claimed.length === 0) return [];
    const values = { status: OperationStatus.Running, stage: 'calling_hypervisor', leaseOwner: owner, leaseExpiresAt: leaseUntil };
    const set: Record<string, unknown> = { ...values, attempts: () => 'attempts + 1', startedAt: () => 'COALESCE(started_at, :now)' };
    await on(this.ops, tx)
      .createQueryBuilder()
      .update()
      .set(set)
      .where('id IN (:...ids)', { ids: claimed.map((op) => op.id), now })
      .updateEntity(false)
      .execute();
    // The rows now hold what was read plus the update; build that here instead of reading them again.
    for (const op of claimed) {
      Object.assign(op, values, { attempts: op.attempts + 1, startedAt: op.startedAt ?? now, updatedAt: set.updatedAt });
    }
    return claimed;
  }

  /** Extends the leases of everything this worker is running: one statement per heartbeat. */
  async renewLeases(tx: Tx, owner: string, leaseUntil: Date): Promise<number> {
    // The open-lease index narrows the rows to open operations; the running ones this worker holds are among them.
    const result = await on(this.ops, tx)
      .createQueryBuilder()
      .update()
      .set({ leaseExpiresAt: leaseUntil })
      .where(statusIn('status', OPEN_STATUSES))
      .andWhere('status = :running AND lease_owner = :owner', { running: OperationStatus.Running, owner })
      .updateEntity(false)
      .execute();
    return result.affected ?? 0;
  }

  /** Frees every lease; used on SQLite at start, where the previous process was the only worker. */
  async releaseAllLeases(tx: Tx): Promise<number> {
    const result = await on(this.ops, tx).createQueryBuilder().update().set({ leaseExpiresAt: null }).where(statusIn('status', OPEN_STATUSES)).updateEntity(false).execute();
    return result.affected ?? 0;
  }

  async countStale(tx: Tx, now: Date): Promise<number> {
    return on(this.ops, tx)
      .createQueryBuilder('o')
      .where(statusIn('o.status', OPEN_STATUSES))
      .andWhere('(o.leaseExpiresAt IS NULL OR o.leaseExpiresAt < :now)', { now })
      .getCount();
  }

  async progress(tx: Tx, id: string, stage: string, attempts: number, errorMessage: string | null): Promise<void> {
    await on(this.ops, tx).update({ id }, { stage, attempts, errorMessage });
  }

  /**
   * Records an operation's outcome. With `leaseOwner`, only while that worker
   * still holds the lease (a fencing check): a worker that stalled past its
   * lease must not overwrite the outcome of the worker that took over.
   * Returns whether the row was updated.
   */
  async complete(tx: Tx, id: string, completion: Completion, now: Date, leaseOwner: string | null = null): Promise<boolean> {
    const params = {
      id,
      status: completion.status,
      attempts: completion.attempts,
      errorCode: completion.errorCode ?? null,
      errorMessage: completion.errorMessage ?? null,
      finishedAt: now,
      leaseOwner,
    };
    const { affected } = await this.statements.update(tx, this.ops.target, `complete:${leaseOwner !== null}`, params, (qb) => {
      qb.set({
        status: () => ':status',
        stage: 'done',
        attempts: () => ':attempts',
        errorCode: () => ':errorCode',
        errorMessage: () => ':errorMessage',
        leaseOwner: null,
        leaseExpiresAt: null,
        finishedAt: () => ':finishedAt',
      }).where('id = :id');
      return leaseOwner ? qb.andWhere('lease_owner = :leaseOwner').andWhere(statusIn('status', OPEN_STATUSES)) : qb;
    });
    return affected === 1;
  }

  /** Open operations, by status (the open-operations index; waiting ones are countWaiting's). */
  async countOpen(tx: Tx): Promise<{ status: OperationStatus; count: number }[]> {
    const rows = await on(this.ops, tx)
      .createQueryBuilder('o')
      .select('o.status', 'status')
      .addSelect('COUNT(*)', 'count')
      .where(statusIn('o.status', OPEN_STATUSES))
      .groupBy('o.status')
      .getRawMany<{ status: OperationStatus; count: string | number }>();
    return rows.map((r) => ({ status: r.status, count: Number(r.count) }));
  }

  /** Operations in the capacity queue, all models and regions (the waiting operations' partial index). */
  async countWaiting(tx: Tx): Promise<number> {
    return on(this.ops, tx).createQueryBuilder('o').where(WAITING).getCount();
  }
}
