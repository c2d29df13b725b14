import { Column, CreateDateColumn, Entity, OneToMany, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { GpuEntity } from './gpu.entity';

export enum HostState {
  Active = 'active',
  Draining = 'draining',
  Down = 'down',
}

@Entity('hosts')
export class HostEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 253, unique: true })
  name: string;

  @Column({ type: 'varchar', length: 64 })
  region: string;

  @Column({ name: 'cpu_cores', type: 'integer' })
  cpuCores: number;

  @Column({ name: 'memory_mib', type: 'integer' })
  memoryMib: number;

  @Column({ name: 'disk_gib', type: 'integer' })
  diskGib: number;

  /** Capacity claimed by VMs placed here; CHECK constraints keep it within the totals. */
  @Column({ name: 'used_cpu_cores', type: 'integer', default: 0 })
  usedCpuCores: number;

  @Column({ name: 'used_memory_mib', type: 'integer', default: 0 })
  usedMemoryMib: number;

  @Column({ name: 'used_disk_gib', type: 'integer', default: 0 })
  usedDiskGib: number;

  @Column({ type: 'varchar', length: 16 })
  state: HostState;

  /** The libvirt URI this host's VMs are driven through (e.g. qemu+ssh://ops@gpu-17/system); null: the driver's default. */
  @Column({ name: 'hypervisor_uri', type: 'varchar', length: 512, nullable: true })
  hypervisorUri: string | null;

  @OneToMany(() => GpuEntity, (gpu) => gpu.host)
  gpus: GpuEntity[];

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
