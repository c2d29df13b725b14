import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { UserRole } from '../common/user-role';

@Entity('users')
export class UserEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 64, unique: true })
  username: string;

  @Column({ name: 'password_hash', type: 'varchar', length: 255 })
  passwordHash: string;

  @Column({ type: 'varchar', length: 16 })
  role: UserRole;

  /** Quota limits; null means the configured default. */
  @Column({ name: 'quota_vcpus', type: 'integer', nullable: true })
  quotaVcpus: number | null;

  @Column({ name: 'quota_memory_mib', type: 'integer', nullable: true })
  quotaMemoryMib: number | null;

  /** GPUs in milli-GPUs: a whole GPU is 1000, a 3g of 7 is 429, a 1/4 vGPU 250. */
  @Column({ name: 'quota_gpu_milli', type: 'integer', nullable: true })
  quotaGpuMilli: number | null;

  @Column({ name: 'quota_vms', type: 'integer', nullable: true })
  quotaVms: number | null;

  /** Usage counters, changed in the same transaction that claims or releases a VM's resources. */
  @Column({ name: 'used_vcpus', type: 'integer', default: 0 })
  usedVcpus: number;

  @Column({ name: 'used_memory_mib', type: 'integer', default: 0 })
  usedMemoryMib: number;

  @Column({ name: 'used_gpu_milli', type: 'integer', default: 0 })
  usedGpuMilli: number;

  @Column({ name: 'used_vms', type: 'integer', default: 0 })
  usedVms: number;

  /** Bumped by a password change, a disable or a delete: tokens carry the version they were issued at. */
  @Column({ name: 'token_version', type: 'integer', default: 0 })
  tokenVersion: number;

  @Column({ name: 'disabled_at', type: Date, nullable: true })
  disabledAt: Date | null;

  /** Users are deleted in place: their VMs and operations keep pointing at them. */
  @Column({ name: 'deleted_at', type: Date, nullable: true })
  deletedAt: Date | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
