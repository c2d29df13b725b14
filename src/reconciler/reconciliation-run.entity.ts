import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

@Entity('reconciliation_runs')
export class ReconciliationRunEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'started_at', type: Date })
  startedAt: Date;

  @Column({ name: 'finished_at', type: Date, nullable: true })
  finishedAt: Date | null;

  @Column({ name: 'hypervisor_vms', type: 'integer', default: 0 })
  hypervisorVms: number;

  @Column({ name: 'orphans_found', type: 'integer', default: 0 })
  orphansFound: number;

  @Column({ name: 'orphans_removed', type: 'integer', default: 0 })
  orphansRemoved: number;

  @Column({ name: 'stuck_operations_resumed', type: 'integer', default: 0 })
  stuckOperationsResumed: number;

  @Column({ name: 'missing_vms_failed', type: 'integer', default: 0 })
  missingVmsFailed: number;

  /** VMs of other installations on the same hosts: reported, never touched. */
  @Column({ name: 'foreign_vms', type: 'integer', default: 0 })
  foreignVms: number;

  /** JSON: the individual findings. */
  @Column({ type: 'text' })
  details: string;

  @Column({ type: 'text', nullable: true })
  error: string | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
