import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

export type ImageFormat = 'qcow2' | 'raw';

/** A base image on the control plane; the libvirt driver uploads it once into each host's pool. */
@Entity('images')
export class ImageEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 64, unique: true })
  name: string;

  /** Absolute path of the file on the control plane. */
  @Column({ type: 'varchar', length: 4096 })
  path: string;

  @Column({ type: 'varchar', length: 8 })
  format: ImageFormat;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
