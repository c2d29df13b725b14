import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { GpuSharingMode } from './domain/gpu-profiles';
import { HostEntity } from './host.entity';

@Entity('gpus')
export class GpuEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'host_id', type: 'uuid' })
  hostId: string;

  @ManyToOne(() => HostEntity, (host) => host.gpus)
  @JoinColumn({ name: 'host_id' })
  host: HostEntity;

  @Column({ name: 'index', type: 'integer' })
  index: number;

  /** Canonical model id, e.g. h100-80gb; what users ask for. */
  @Column({ type: 'varchar', length: 64 })
  model: string;

  @Column({ name: 'product_name', type: 'varchar', length: 128 })
  productName: string;

  @Column({ name: 'memory_mib', type: 'integer' })
  memoryMib: number;

  @Column({ name: 'pci_address', type: 'varchar', length: 32 })
  pciAddress: string;

  /** The device UUID reported by the driver (GPU-…). */
  @Column({ type: 'varchar', length: 64, unique: true })
  uuid: string;

  @Column({ name: 'mig_mode', type: 'varchar', length: 16, default: 'disabled' })
  migMode: string;

  /** passthrough (whole GPUs, bound through vm_id), vgpu (time-sliced) or mig; changed only while nothing holds the GPU. */
  @Column({ name: 'sharing_mode', type: 'varchar', length: 16, default: 'passthrough' })
  sharingMode: GpuSharingMode;

  /** The one time-sliced vGPU size a vgpu GPU holds now; null while it holds none. */
  @Column({ name: 'vgpu_profile', type: 'varchar', length: 16, nullable: true })
  vgpuProfile: string | null;

  /** VMs holding a part of the GPU (gpu_slot_claims); a mode change needs 0, checked on this row. */
  @Column({ name: 'live_claims', type: 'integer', default: 0 })
  liveClaims: number;

  /** The VM the GPU is bound to; set and cleared only by conditional updates. */
  @Column({ name: 'vm_id', type: 'uuid', nullable: true })
  vmId: string | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
