import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/**
 * Fractional GPUs (issue 14):
 * - gpus.sharing_mode (passthrough, vgpu or mig; set by an admin while the GPU is idle), gpus.vgpu_profile (the one
 *   time-sliced size a vgpu GPU holds, null when it holds none) and gpus.live_claims (how many VMs hold a part of the
 *   GPU: a mode change requires 0, checked on the GPU's own row so a racing claim cannot slip past it);
 * - gpu_slot_claims: one row per slot a VM holds on a shared GPU (a MIG memory slice, the media-extension slot, or a
 *   vGPU seat). The partial unique index on (gpu_id, slot) among live rows makes two live VMs holding the same slot
 *   impossible, across replicas;
 * - vms.gpu_profile: the profile a VM asked for instead of gpu_count;
 * - users' GPU quota and usage count milli-GPUs: quota_gpus and used_gpus become quota_gpu_milli and used_gpu_milli
 *   (× 1000). A rename keeps the usage check constraint on both databases.
 */
export class FractionalGpus1765400000000 implements MigrationInterface {
  name = 'FractionalGpus1765400000000';

  async up(runner: QueryRunner): Promise<void> {
    const pg = runner.connection.driver.options.type === 'postgres';
    const ts = pg ? 'timestamptz' : 'datetime';
    const uuid = pg ? 'uuid' : 'varchar(36)';
    await runner.query(`ALTER TABLE gpus ADD COLUMN sharing_mode varchar(16) NOT NULL DEFAULT 'passthrough'`);
    await runner.query('ALTER TABLE gpus ADD COLUMN vgpu_profile varchar(16)');
    await runner.query('ALTER TABLE gpus ADD COLUMN live_claims integer NOT NULL DEFAULT 0');
    await runner.query('ALTER TABLE vms ADD COLUMN gpu_profile varchar(32)');
    await runner.createTable(
      new Table({
        name: 'gpu_slot_claims',
        columns: [
          { name: 'id', type: uuid, isPrimary: true },
          { name: 'gpu_id', type: uuid, isNullable: false },
          { name: 'vm_id', type: uuid, isNullable: false },
          { name: 'slot', type: 'integer', isNullable: false },
          { name: 'profile', type: 'varchar', length: '32', isNullable: false },
          { name: 'released_at', type: ts, isNullable: true },
          { name: 'created_at', type: ts, isNullable: false },
          { name: 'updated_at', type: ts, isNullable: false },
        ],
        foreignKeys: [
          { name: 'fk_gpu_slot_claims_gpu_id', columnNames: ['gpu_id'], referencedTableName: 'gpus', referencedColumnNames: ['id'], onDelete: 'RESTRICT' },
          { name: 'fk_gpu_slot_claims_vm_id', columnNames: ['vm_id'], referencedTableName: 'vms', referencedColumnNames: ['id'], onDelete: 'RESTRICT' },
        ],
        indices: [
          new TableIndex({ name: 'ix_gpu_slot_claims_vm_id', columnNames: ['vm_id'] }),
          new TableIndex({ name: 'uq_gpu_slot_claims_live_slot', columnNames: ['gpu_id', 'slot'], isUnique: true, where: 'released_at IS NULL' }),
        ],
      }),
    );
    await runner.query('ALTER TABLE users RENAME COLUMN used_gpus TO used_gpu_milli');
    await runner.query('ALTER TABLE users RENAME COLUMN quota_gpus TO quota_gpu_milli');
    await runner.query('UPDATE users SET used_gpu_milli = used_gpu_milli * 1000, quota_gpu_milli = quota_gpu_milli * 1000');
  }

  async down(runner: QueryRunner): Promise<void> {
    // Fractional usage rounds up, so a user is never shown less than they hold.
    await runner.query('UPDATE users SET used_gpu_milli = (used_gpu_milli + 999) / 1000, quota_gpu_milli = quota_gpu_milli / 1000');
    await runner.query('ALTER TABLE users RENAME COLUMN quota_gpu_milli TO quota_gpus');
    await runner.query('ALTER TABLE users RENAME COLUMN used_gpu_milli TO used_gpus');
    await runner.dropTable('gpu_slot_claims');
    await runner.query('ALTER TABLE vms DROP COLUMN gpu_profile');
    for (const column of ['live_claims', 'vgpu_profile', 'sharing_mode']) await runner.query(`ALTER TABLE gpus DROP COLUMN ${column}`);
  }
}
