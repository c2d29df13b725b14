import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** One user's OpenSSH public key; the name is unique per user. */
@Entity('ssh_keys')
export class SshKeyEntity {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'owner_id', type: 'uuid' })
  ownerId: string;

  @Column({ type: 'varchar', length: 64 })
  name: string;

  /** The key as one OpenSSH line (`type base64 [comment]`), re-serialised by the parser. */
  @Column({ name: 'public_key', type: 'text' })
  publicKey: string;

  @Column({ name: 'key_type', type: 'varchar', length: 32 })
  keyType: string;

  /** `SHA256:…`, as `ssh-keygen -lf` prints it. */
  @Column({ type: 'varchar', length: 128 })
  fingerprint: string;

  @Column({ type: 'varchar', length: 255, nullable: true })
  comment: string | null;

  @CreateDateColumn({ name: 'created_at' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at' })
  updatedAt: Date;
}
