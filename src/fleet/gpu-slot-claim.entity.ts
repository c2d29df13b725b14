import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { VmEntity } from '../vms/vm.entity';
import { GpuEntity } from './gpu.entity';

/**
 * One slot a VM holds on a shared GPU: a MIG memory slice (0–7) or the media
 * extensions (8), or one vGPU seat (0 … k−1 for a 1/k size). A VM's claim on a
 * GPU is all its rows with that gpu_id. A partial unique index on (gpu_id,
 * slot) where released_at is null makes two live VMs holding one slot
 * impossible, on SQLite and PostgreSQL alike.
 */
@Entity('gpu_slot_claims')
export class GpuSlotClaimEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'gpu_id', type: 'uuid' })
  gpuId: string;

  @ManyToOne(() => GpuEntity)
  @JoinColumn({ name: 'gpu_id' })
  gpu?: GpuEntity;

  @Column({ name: 'vm_id', type: 'uuid' })
  vmId: string;

  // A string target: the VM entity imports this one.
  @ManyToOne('VmEntity', 'slotClaims')
  @JoinColumn({ name: 'vm_id' })
  vm?: VmEntity;

  @Column({ type: 'integer' })
  slot: number;

  /** The profile the claim is for (`1g.18gb`, `1/4`). */
  @Column({ type: 'varchar', length: 32 })
  profile: string;

  @Column({ name: 'released_at', type: Date, nullable: true })
  releasedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
