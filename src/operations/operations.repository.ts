import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/unit-of-work';
import { OperationAction, OperationStatus } from './operation.entity';
import type { OperationRecord } from './operation-record';

interface OperationRow {
  id: string;
  vm_id: string | null;
  action: OperationAction;
  status: OperationStatus;
  stage: string;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  user_id: string | null;
  hypervisor_vm_id: string | null;
  request_id: string | null;
  lease_owner: string | null;
  lease_expires_at: unknown;
  started_at: unknown;
  finished_at: unknown;
  created_at: unknown;
  updated_at: unknown;
}

const COLUMNS = `id, vm_id, action, status, stage, attempts, error_code, error_message, user_id, hypervisor_vm_id,
  request_id, lease_owner, lease_expires_at, started_at, finished_at, created_at, updated_at`;

export interface Completion {
  status: OperationStatus.Succeeded | OperationStatus.Failed;
  attempts: number;
  errorCode?: string | null;
  errorMessage?: string | null;
}

/** The operation log. Rows are inserted and updated, never deleted. */
@Injectable()
export class OperationsRepository {
  async insert(tx: Tx, op: OperationRecord): Promise<void> {
    const d = tx.dialect;
    await tx.run(
      `INSERT INTO operations (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      [
        op.id,
        op.vmId,
        op.action,
        op.status,
        op.stage,
        op.attempts,
        op.errorCode,
        op.errorMessage,
        op.userId,
        op.hypervisorVmId,
        op.requestId,
        op.leaseOwner,
        d.tsOrNull(op.leaseExpiresAt),
        d.tsOrNull(op.startedAt),
        d.tsOrNull(op.finishedAt),
        d.ts(op.createdAt),
        d.ts(op.updatedAt),
      ],
    );
  }

  async findById(tx: Tx, id: string): Promise<OperationRecord | null> {
    const row = await tx.one<OperationRow>(`SELECT ${COLUMNS} FROM operations WHERE id = $1`, [id]);
    return row ? this.toRecord(tx, row) : null;
  }

  /** Newest first, keyset-paginated by id. */
  async listByVm(tx: Tx, vmId: string, beforeId: string | null, limit: number): Promise<OperationRecord[]> {
    const rows = beforeId
      ? await tx.rows<OperationRow>(`SELECT ${COLUMNS} FROM operations WHERE vm_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, [
          vmId,
          beforeId,
          limit,
        ])
      : await tx.rows<OperationRow>(`SELECT ${COLUMNS} FROM operations WHERE vm_id = $1 ORDER BY id DESC LIMIT $2`, [vmId, limit]);
    return rows.map((r) => this.toRecord(tx, r));
  }

  async listByUser(tx: Tx, userId: string | null, beforeId: string | null, limit: number): Promise<OperationRecord[]> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (userId) {
      params.push(userId);
      where.push(`vm_id IN (SELECT id FROM vms WHERE owner_id = $${params.length})`);
    }
    if (beforeId) {
      params.push(beforeId);
      where.push(`id < $${params.length}`);
    }
    params.push(limit);
    const rows = await tx.rows<OperationRow>(
      `SELECT ${COLUMNS} FROM operations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => this.toRecord(tx, r));
  }

  /** The unfinished operation of a VM, if any (at most one exists at a time). */
  async findOpenForVm(tx: Tx, vmId: string): Promise<OperationRecord | null> {
    const row = await tx.one<OperationRow>(
      `SELECT ${COLUMNS} FROM operations WHERE vm_id = $1 AND status IN ('pending', 'running') ORDER BY id DESC LIMIT 1`,
      [vmId],
    );
    return row ? this.toRecord(tx, row) : null;
  }

  /**
   * Claims up to `limit` operations that nobody holds: pending ones, and
   * running ones whose lease has lapsed (their worker died). On PostgreSQL
   * SKIP LOCKED lets several workers claim side by side.
   */
  async claim(tx: Tx, owner: string, now: Date, leaseUntil: Date, limit: number): Promise<OperationRecord[]> {
    const d = tx.dialect;
    const rows = await tx.rows<OperationRow>(
      `UPDATE operations SET status = 'running', stage = 'calling_hypervisor', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1,
         started_at = COALESCE(started_at, $3), updated_at = $3
       WHERE id IN (
         SELECT id FROM operations
         WHERE status IN ('pending', 'running') AND (lease_expires_at IS NULL OR lease_expires_at < $3)
         ORDER BY created_at LIMIT $4 ${d.forUpdateSkipLocked})
       RETURNING ${COLUMNS}`,
      [owner, d.ts(leaseUntil), d.ts(now), limit],
    );
    return rows.map((r) => this.toRecord(tx, r));
  }

  /** Extends the leases of everything this worker is running: one statement per heartbeat. */
  async renewLeases(tx: Tx, owner: string, leaseUntil: Date): Promise<number> {
    return tx.run(`UPDATE operations SET lease_expires_at = $2 WHERE lease_owner = $1 AND status = 'running'`, [
      owner,
      tx.dialect.ts(leaseUntil),
    ]);
  }

  /** Frees every lease; used on SQLite at start, where the previous process was the only worker. */
  async releaseAllLeases(tx: Tx): Promise<number> {
    return tx.run(`UPDATE operations SET lease_expires_at = NULL WHERE status IN ('pending', 'running')`);
  }

  async countStale(tx: Tx, now: Date): Promise<number> {
    const row = await tx.one<{ n: number }>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS n FROM operations
       WHERE status IN ('pending', 'running') AND (lease_expires_at IS NULL OR lease_expires_at < $1)`,
      [tx.dialect.ts(now)],
    );
    return row?.n ?? 0;
  }

  async progress(tx: Tx, id: string, stage: string, attempts: number, errorMessage: string | null, now: Date): Promise<void> {
    await tx.run(`UPDATE operations SET stage = $2, attempts = $3, error_message = $4, updated_at = $5 WHERE id = $1`, [
      id,
      stage,
      attempts,
      errorMessage,
      tx.dialect.ts(now),
    ]);
  }

  /**
   * Records an operation's outcome. With `leaseOwner`, only while that worker
   * still holds the lease (a fencing check): a worker that stalled past its
   * lease must not overwrite the outcome of the worker that took over.
   * Returns whether the row was updated.
   */
  async complete(tx: Tx, id: string, completion: Completion, now: Date, leaseOwner: string | null = null): Promise<boolean> {
    const ts = tx.dialect.ts(now);
    const params: unknown[] = [id, completion.status, completion.attempts, completion.errorCode ?? null, completion.errorMessage ?? null, ts];
    let fence = '';
    if (leaseOwner) {
      params.push(leaseOwner);
      fence = ` AND lease_owner = $${params.length} AND status IN ('pending', 'running')`;
    }
    const changed = await tx.run(
      `UPDATE operations SET status = $2, stage = 'done', attempts = $3, error_code = $4, error_message = $5,
         lease_owner = NULL, lease_expires_at = NULL, finished_at = $6, updated_at = $6
       WHERE id = $1${fence}`,
      params,
    );
    return changed === 1;
  }

  countOpen(tx: Tx): Promise<{ status: OperationStatus; count: number }[]> {
    return tx.rows(
      `SELECT status, CAST(COUNT(*) AS INTEGER) AS count FROM operations WHERE status IN ('pending', 'running') GROUP BY status`,
    );
  }

  private toRecord(tx: Tx, r: OperationRow): OperationRecord {
    const d = tx.dialect;
    return {
      id: r.id,
      vmId: r.vm_id,
      action: r.action,
      status: r.status,
      stage: r.stage,
      attempts: r.attempts,
      errorCode: r.error_code,
      errorMessage: r.error_message,
      userId: r.user_id,
      hypervisorVmId: r.hypervisor_vm_id,
      requestId: r.request_id,
      leaseOwner: r.lease_owner,
      leaseExpiresAt: d.dateOrNull(r.lease_expires_at),
      startedAt: d.dateOrNull(r.started_at),
      finishedAt: d.dateOrNull(r.finished_at),
      createdAt: d.date(r.created_at),
      updatedAt: d.date(r.updated_at),
    };
  }
}
