import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export enum VmStatus {
  Provisioning = 'provisioning',
  Created = 'created',
  Deleting = 'deleting',
  Deleted = 'deleted',
  Failed = 'failed',
}

@Entity('vms')
export class VmEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId: string;

  @Column({ type: 'varchar', length: 63 })
  name: string;

  @Column({ name: 'cpu_cores', type: 'integer' })
  cpuCores: number;

  /** MiB */
  @Column({ type: 'integer' })
  memory: number;

  /** GiB */
  @Column({ name: 'disk_size', type: 'integer' })
  diskSize: number;

  @Column({ name: 'public_ip', type: 'varchar', length: 45, nullable: true })
  publicIp: string | null;

  /** JSON array, as sent; vm_labels holds the same labels for filtering. */
  @Column({ type: 'text' })
  labels: string;

  @Column({ type: 'varchar', length: 16 })
  status: VmStatus;

  @Column({ name: 'status_reason', type: 'text', nullable: true })
  statusReason: string | null;

  @Column({ name: 'host_id', type: 'uuid', nullable: true })
  hostId: string | null;

  @Column({ name: 'gpu_count', type: 'integer', default: 0 })
  gpuCount: number;

  @Column({ name: 'gpu_model', type: 'varchar', length: 64, nullable: true })
  gpuModel: string | null;

  /** The hypervisor's id for this VM, once it exists there. */
  @Column({ name: 'hypervisor_id', type: 'varchar', length: 64, nullable: true })
  hypervisorId: string | null;

  /** Set when the VM's host capacity, GPUs, quota and public IP were given back. */
  @Column({ name: 'released_at', type: Date, nullable: true })
  releasedAt: Date | null;

  @Column({ name: 'deleted_at', type: Date, nullable: true })
  deletedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
