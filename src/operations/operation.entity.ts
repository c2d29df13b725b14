import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { VmEntity } from '../vms/vm.entity';

export enum OperationAction {
  Create = 'create',
  Delete = 'delete',
  CleanupOrphan = 'cleanup_orphan',
  /** A status change made by the reconciler, e.g. a VM found missing from the hypervisor. */
  Reconcile = 'reconcile',
  Stop = 'stop',
  Start = 'start',
  Reboot = 'reboot',
  Shelve = 'shelve',
  Unshelve = 'unshelve',
  Resize = 'resize',
  /** A rename or relabel: a record change, logged as it happens. */
  Update = 'update',
}

export enum OperationStatus {
  /** A create or unshelve in the capacity queue: no worker runs it; the queue places it when capacity frees. */
  WaitingForCapacity = 'waiting_for_capacity',
  Pending = 'pending',
  Running = 'running',
  Succeeded = 'succeeded',
  Failed = 'failed',
}

/**
 * An operation log entry. Rows are never deleted. A VM has at most one open
 * (pending or running) operation: a partial unique index enforces it.
 */
@Entity('operations')
export class OperationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'vm_id', type: 'uuid', nullable: true })
  vmId: string | null;

  /** For owner checks in queries; never loaded with the operation. */
  @ManyToOne('VmEntity')
  @JoinColumn({ name: 'vm_id' })
  vm?: VmEntity | null;

  @Column({ type: 'varchar', length: 32 })
  action: OperationAction;

  @Column({ type: 'varchar', length: 16 })
  status: OperationStatus;

  /** Where the work is: queued, calling_hypervisor, backoff (waiting to retry), done. */
  @Column({ type: 'varchar', length: 32 })
  stage: string;

  @Column({ type: 'integer', default: 0 })
  attempts: number;

  @Column({ name: 'error_code', type: 'varchar', length: 64, nullable: true })
  errorCode: string | null;

  @Column({ name: 'error_message', type: 'text', nullable: true })
  errorMessage: string | null;

  /** The acting user; null for the system (reconciler). */
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId: string | null;

  /** For cleanup of a hypervisor VM the platform does not know as live. */
  @Column({ name: 'hypervisor_vm_id', type: 'varchar', length: 64, nullable: true })
  hypervisorVmId: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true })
  requestId: string | null;

  /** What the action needs beyond the VM (e.g. a resize's sizes, a hard reboot), as JSON. */
  @Column({ type: 'simple-json', nullable: true })
  params: Record<string, unknown> | null;

  /** A waiting operation fails with insufficient_capacity when this passes. */
  @Column({ name: 'deadline_at', type: Date, nullable: true })
  deadlineAt: Date | null;

  /** The capacity queue a waiting operation is in: its GPU model and region (`*` for any). */
  @Column({ name: 'queue_key', type: 'varchar', length: 160, nullable: true })
  queueKey: string | null;

  @Column({ name: 'lease_owner', type: 'varchar', length: 64, nullable: true })
  leaseOwner: string | null;

  @Column({ name: 'lease_expires_at', type: Date, nullable: true })
  leaseExpiresAt: Date | null;

  @Column({ name: 'started_at', type: Date, nullable: true })
  startedAt: Date | null;

  @Column({ name: 'finished_at', type: Date, nullable: true })
  finishedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}

/** Statuses a worker may run. */
export const OPEN_STATUSES: readonly OperationStatus[] = [OperationStatus.Pending, OperationStatus.Running];
/** Statuses that make an operation the VM's one open operation. */
export const UNFINISHED_STATUSES: readonly OperationStatus[] = [...OPEN_STATUSES, OperationStatus.WaitingForCapacity];

export function isFinished(op: Pick<OperationEntity, 'status'>): boolean {
  return op.status === OperationStatus.Succeeded || op.status === OperationStatus.Failed;
}
