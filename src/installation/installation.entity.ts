import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** This installation's identity: one row, made at the first start and never changed. */
@Entity('installation')
export class InstallationEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'integer', default: 1 })
  singleton: number;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
