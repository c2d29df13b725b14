import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { VmEntity } from '../vms/vm.entity';
import { GpuEntity } from './gpu.entity';

/**
 * The history of GPU bindings: the VM↔GPU join. A partial unique index on
 * gpu_id where released_at is null makes binding one GPU to two live VMs
 * impossible at the database level, on SQLite and PostgreSQL alike.
 */
@Entity('gpu_allocations')
export class GpuAllocationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'gpu_id', type: 'uuid' })
  gpuId: string;

  @ManyToOne(() => GpuEntity)
  @JoinColumn({ name: 'gpu_id' })
  gpu?: GpuEntity;

  @Column({ name: 'vm_id', type: 'uuid' })
  vmId: string;

  // A string target: the VM entity imports this one, and a class reference here would be undefined at load time.
  @ManyToOne('VmEntity', 'allocations')
  @JoinColumn({ name: 'vm_id' })
  vm?: VmEntity;

  @Column({ name: 'released_at', type: Date, nullable: true })
  releasedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
