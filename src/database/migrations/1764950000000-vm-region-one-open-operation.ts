import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

/**
 * - vms.region: where the VM was placed, fixed for its life, so reading a VM
 *   needs no join with hosts (whose rows every create and delete rewrites).
 * - One open operation per VM, enforced by the database: a partial unique
 *   index over the pending and running ones.
 *
 * ALTER TABLE … ADD COLUMN is plain SQL that both databases run in place;
 * TypeORM's addColumn would rebuild the whole table on SQLite.
 */
export class VmRegionOneOpenOperation1764950000000 implements MigrationInterface {
  name = 'VmRegionOneOpenOperation1764950000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE vms ADD COLUMN region varchar(64)');
    await runner.query('UPDATE vms SET region = (SELECT hosts.region FROM hosts WHERE hosts.id = vms.host_id) WHERE host_id IS NOT NULL');
    await runner.createIndex(
      'operations',
      new TableIndex({
        name: 'uq_operations_open_vm',
        columnNames: ['vm_id'],
        isUnique: true,
        where: "vm_id IS NOT NULL AND status IN ('pending', 'running')",
      }),
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.dropIndex('operations', 'uq_operations_open_vm');
    await runner.query('ALTER TABLE vms DROP COLUMN region');
  }
}
