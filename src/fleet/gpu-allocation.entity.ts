import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * The history of GPU bindings. A partial unique index on gpu_id where
 * released_at is null makes binding one GPU to two live VMs impossible at the
 * database level, on SQLite and PostgreSQL alike.
 */
@Entity('gpu_allocations')
export class GpuAllocationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'gpu_id', type: 'uuid' })
  gpuId: string;

  @Column({ name: 'vm_id', type: 'uuid' })
  vmId: string;

  @Column({ name: 'released_at', type: Date, nullable: true })
  releasedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
