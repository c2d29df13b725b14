import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export enum OperationAction {
  Create = 'create',
  Delete = 'delete',
  CleanupOrphan = 'cleanup_orphan',
  /** A status change made by the reconciler, e.g. a VM found missing from the hypervisor. */
  Reconcile = 'reconcile',
}

export enum OperationStatus {
  Pending = 'pending',
  Running = 'running',
  Succeeded = 'succeeded',
  Failed = 'failed',
}

/** An operation log entry. Rows are never deleted. */
@Entity('operations')
export class OperationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'vm_id', type: 'uuid', nullable: true })
  vmId: string | null;

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
