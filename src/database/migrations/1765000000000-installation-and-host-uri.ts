import { MigrationInterface, QueryRunner, Table, TableCheck } from 'typeorm';

/**
 * - installation: this control plane's identity, one row made at its first
 *   start. Every hypervisor VM it makes carries the id, and its reconciler
 *   touches only VMs that carry it, so two installations can share hosts.
 * - reconciliation_runs.foreign_vms: VMs of other installations seen (and left alone).
 * - hosts.hypervisor_uri: the libvirt URI a host's VMs are driven through.
 */
export class InstallationAndHostUri1765000000000 implements MigrationInterface {
  name = 'InstallationAndHostUri1765000000000';

  async up(runner: QueryRunner): Promise<void> {
    const pg = runner.connection.driver.options.type === 'postgres';
    const ts = pg ? 'timestamptz' : 'datetime';
    await runner.createTable(
      new Table({
        name: 'installation',
        columns: [
          { name: 'id', type: pg ? 'uuid' : 'varchar', length: pg ? undefined : '36', isPrimary: true },
          // Always 1: with the unique constraint, there is never a second row.
          { name: 'singleton', type: 'integer', isNullable: false, default: 1 },
          { name: 'created_at', type: ts, isNullable: false },
          { name: 'updated_at', type: ts, isNullable: false },
        ],
        uniques: [{ name: 'uq_installation_singleton', columnNames: ['singleton'] }],
        checks: [new TableCheck({ name: 'ck_installation_singleton', expression: 'singleton = 1' })],
      }),
    );
    await runner.query('ALTER TABLE reconciliation_runs ADD COLUMN foreign_vms integer NOT NULL DEFAULT 0');
    await runner.query('ALTER TABLE hosts ADD COLUMN hypervisor_uri varchar(512)');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE hosts DROP COLUMN hypervisor_uri');
    await runner.query('ALTER TABLE reconciliation_runs DROP COLUMN foreign_vms');
    await runner.dropTable('installation');
  }
}
