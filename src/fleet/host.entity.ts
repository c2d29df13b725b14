import { Column, CreateDateColumn, Entity, OneToMany, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { GpuEntity } from './gpu.entity';

export enum HostState {
  Active = 'active',
  Draining = 'draining',
  Down = 'down',
  /** Taken out of the fleet by DELETE /hosts/{id}; the row stays for the VMs and allocations that point at it. */
  Removed = 'removed',
}

/** The states an admin may set by PATCH; `removed` is reached only by DELETE and never left. */
export const SETTABLE_HOST_STATES = [HostState.Active, HostState.Draining, HostState.Down] as const;
export type SettableHostState = (typeof SETTABLE_HOST_STATES)[number];

@Entity('hosts')
export class HostEntity {
  @PrimaryColumn('uuid')
  id: string;

  /** Unique among hosts that are not removed (uq_hosts_live_name), so a replacement machine can take a removed host's name. */
  @Column({ type: 'varchar', length: 253 })
  name: string;

  /** An admin's labels for the host, as sent. */
  @Column({ type: 'simple-json' })
  labels: string[];

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

  /**
   * Since when the host's hypervisor has not answered: a reconciliation pass could not list it, or a create could
   * not reach it. Null while it answers. Placement leaves such a host out until a pass finds it answering again.
   */
  @Column({ name: 'unreachable_since', type: Date, nullable: true })
  unreachableSince: Date | null;

  @OneToMany(() => GpuEntity, (gpu) => gpu.host)
  gpus: GpuEntity[];

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
