import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/**
 * What a user asks for on create (issue 13):
 * - images: base images on the control plane, registered by admins, chosen by name;
 * - ssh_keys: each user's OpenSSH public keys, with their SHA256 fingerprints; a name is unique per user;
 * - vms.image (the image's name), vms.user_data (cloud-init, kept because unshelve needs it again) and
 *   vms.ssh_keys (the keys as they were at create, JSON, so deleting a key later does not change a VM).
 */
export class ImagesSshKeysUserData1765300000000 implements MigrationInterface {
  name = 'ImagesSshKeysUserData1765300000000';

  async up(runner: QueryRunner): Promise<void> {
    const pg = runner.connection.driver.options.type === 'postgres';
    const ts = pg ? 'timestamptz' : 'datetime';
    const uuid = pg ? 'uuid' : 'varchar(36)';
    await runner.createTable(
      new Table({
        name: 'images',
        columns: [
          { name: 'id', type: uuid, isPrimary: true },
          { name: 'name', type: 'varchar', length: '64', isNullable: false },
          { name: 'path', type: 'varchar', length: '4096', isNullable: false },
          { name: 'format', type: 'varchar', length: '8', isNullable: false },
          { name: 'created_at', type: ts, isNullable: false },
          { name: 'updated_at', type: ts, isNullable: false },
        ],
        uniques: [{ name: 'uq_images_name', columnNames: ['name'] }],
      }),
    );
    await runner.createTable(
      new Table({
        name: 'ssh_keys',
        columns: [
          { name: 'id', type: uuid, isPrimary: true },
          { name: 'owner_id', type: uuid, isNullable: false },
          { name: 'name', type: 'varchar', length: '64', isNullable: false },
          { name: 'public_key', type: 'text', isNullable: false },
          { name: 'key_type', type: 'varchar', length: '32', isNullable: false },
          { name: 'fingerprint', type: 'varchar', length: '128', isNullable: false },
          { name: 'comment', type: 'varchar', length: '255', isNullable: true },
          { name: 'created_at', type: ts, isNullable: false },
          { name: 'updated_at', type: ts, isNullable: false },
        ],
        uniques: [{ name: 'uq_ssh_keys_owner_name', columnNames: ['owner_id', 'name'] }],
        foreignKeys: [
          { name: 'fk_ssh_keys_owner_id', columnNames: ['owner_id'], referencedTableName: 'users', referencedColumnNames: ['id'], onDelete: 'RESTRICT' },
        ],
        indices: [new TableIndex({ name: 'ix_ssh_keys_owner_id', columnNames: ['owner_id', 'id'] })],
      }),
    );
    await runner.query('ALTER TABLE vms ADD COLUMN image varchar(64)');
    await runner.query('ALTER TABLE vms ADD COLUMN user_data text');
    await runner.query('ALTER TABLE vms ADD COLUMN ssh_keys text');
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const column of ['ssh_keys', 'user_data', 'image']) await runner.query(`ALTER TABLE vms DROP COLUMN ${column}`);
    await runner.dropTable('ssh_keys');
    await runner.dropTable('images');
  }
}
