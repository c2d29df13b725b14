import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export enum UsageEventKind {
  PowerOn = 'power_on',
  PowerOff = 'power_off',
  GpuClaim = 'gpu_claim',
  GpuRelease = 'gpu_release',
}

/**
 * One power transition or GPU claim or release of a VM, with its time: the
 * metering record a usage report sums into GPU-hours per user. Written in the
 * transaction that records the change; never changed afterwards.
 */
@Entity('usage_events')
export class UsageEventEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'vm_id', type: 'uuid' })
  vmId: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId: string;

  @Column({ type: 'varchar', length: 32 })
  kind: UsageEventKind;

  @Column({ name: 'gpu_count', type: 'integer', default: 0 })
  gpuCount: number;

  @Column({ name: 'gpu_model', type: 'varchar', length: 64, nullable: true })
  gpuModel: string | null;

  /** GPU events: how much GPU was claimed or released, in thousandths (whole GPUs × 1000, or a profile's weight). */
  @Column({ name: 'gpu_milli', type: 'integer', default: 0 })
  gpuMilli: number;

  /** GPU events of a fractional VM: its MIG profile or vGPU size; null for whole GPUs. */
  @Column({ name: 'gpu_profile', type: 'varchar', length: 32, nullable: true })
  gpuProfile: string | null;

  @Column({ type: Date })
  at: Date;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
