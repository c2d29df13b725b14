import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, OneToMany, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { GpuAllocationEntity } from '../fleet/gpu-allocation.entity';
import { GpuSlotClaimEntity } from '../fleet/gpu-slot-claim.entity';
import { HostEntity } from '../fleet/host.entity';
import type { DiskRef } from '@vmplane/sdk';

export enum VmStatus {
  Provisioning = 'provisioning',
  Created = 'created',
  /** Stopped, its host capacity, GPUs and their quota given back; its disk kept. */
  Shelved = 'shelved',
  Deleting = 'deleting',
  Deleted = 'deleted',
  Failed = 'failed',
}

/** What the hypervisor says about the VM's power; `unknown` when it cannot say, or the VM is not on a hypervisor. */
export enum PowerState {
  Running = 'running',
  ShutOff = 'shut_off',
  Unknown = 'unknown',
}

/** An SSH key as a VM got it. */
export interface VmSshKey {
  name: string;
  fingerprint: string;
  publicKey: string;
}

/** A VM: the persistence model, and the shape services work with. Rows are never deleted. */
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

  /** As sent, in order; vm_labels holds the same labels, one row each, for filtering. */
  @Column({ type: 'simple-json' })
  labels: string[];

  @Column({ type: 'varchar', length: 16 })
  status: VmStatus;

  @Column({ name: 'status_reason', type: 'text', nullable: true })
  statusReason: string | null;

  @Column({ name: 'power_state', type: 'varchar', length: 16, default: PowerState.Unknown })
  powerState: PowerState;

  /** Where a shelved VM's disk is kept (the driver's DiskRef, JSON); null unless shelved. */
  @Column({ name: 'disk_ref', type: 'simple-json', nullable: true })
  diskRef: DiskRef | null;

  /** The base image's name (images.name); null: no image (the simulator needs none). */
  @Column({ type: 'varchar', length: 64, nullable: true })
  image: string | null;

  /** cloud-init user data as sent; kept for unshelve, never listed (responses show its size). */
  @Column({ name: 'user_data', type: 'text', nullable: true })
  userData: string | null;

  /** The SSH keys as they were at create (a key deleted later stays on the VM). */
  @Column({ name: 'ssh_keys', type: 'simple-json', nullable: true })
  sshKeys: VmSshKey[] | null;

  @Column({ name: 'host_id', type: 'uuid', nullable: true })
  hostId: string | null;

  /** Loaded only for readers allowed to see the fleet (admins). */
  @ManyToOne(() => HostEntity)
  @JoinColumn({ name: 'host_id' })
  host?: HostEntity | null;

  /** Where the VM was placed; fixed for its life, so reads need no join. */
  @Column({ type: 'varchar', length: 64, nullable: true })
  region: string | null;

  @Column({ name: 'gpu_count', type: 'integer', default: 0 })
  gpuCount: number;

  @Column({ name: 'gpu_model', type: 'varchar', length: 64, nullable: true })
  gpuModel: string | null;

  /** A vGPU size (`1/4`) or MIG profile (`3g.71gb`) asked for instead of gpu_count (which is then 0); fixed for the VM's life. */
  @Column({ name: 'gpu_profile', type: 'varchar', length: 32, nullable: true })
  gpuProfile: string | null;

  /** The slots the VM holds or held on a shared GPU (gpu_profile VMs); loaded when needed. */
  @OneToMany(() => GpuSlotClaimEntity, (claim) => claim.vm)
  slotClaims?: GpuSlotClaimEntity[];

  /** The GPUs the VM holds or held, through their allocation history; loaded when needed. */
  @OneToMany(() => GpuAllocationEntity, (allocation) => allocation.vm)
  allocations?: GpuAllocationEntity[];

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
