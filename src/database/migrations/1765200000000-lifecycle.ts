import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/**
 * The VM lifecycle beyond create and delete:
 * - vms.power_state (running, shut_off, unknown) and vms.disk_ref (where a shelved VM's disk is kept);
 * - operations.params (an action's parameters), deadline_at and queue_key (a create or unshelve waiting for
 *   capacity, in its queue); operations.status grows to fit `waiting_for_capacity`, and a waiting operation counts
 *   as the VM's one open operation;
 * - usage_events: every power transition and GPU claim or release, with its time, for usage reports.
 */
export class Lifecycle1765200000000 implements MigrationInterface {
  name = 'Lifecycle1765200000000';

  async up(runner: QueryRunner): Promise<void> {
    const pg = runner.connection.driver.options.type === 'postgres';
    const ts = pg ? 'timestamptz' : 'datetime';
    const uuid = pg ? 'uuid' : 'varchar(36)';
    await runner.query(`ALTER TABLE vms ADD COLUMN power_state varchar(16) NOT NULL DEFAULT 'unknown'`);
    await runner.query(`UPDATE vms SET power_state = 'running' WHERE status = 'created'`);
    await runner.query('ALTER TABLE vms ADD COLUMN disk_ref text');
    // SQLite does not enforce varchar lengths; PostgreSQL needs the wider type for waiting_for_capacity.
    if (pg) await runner.query('ALTER TABLE operations ALTER COLUMN status TYPE varchar(32)');
    await runner.query('ALTER TABLE operations ADD COLUMN params text');
    await runner.query(`ALTER TABLE operations ADD COLUMN deadline_at ${ts}`);
    await runner.query('ALTER TABLE operations ADD COLUMN queue_key varchar(160)');
    await runner.dropIndex('operations', 'uq_operations_open_vm');
    await runner.createIndex(
      'operations',
      new TableIndex({
        name: 'uq_operations_open_vm',
        columnNames: ['vm_id'],
        isUnique: true,
        where: "vm_id IS NOT NULL AND status IN ('pending', 'running', 'waiting_for_capacity')",
      }),
    );
    await runner.createIndex(
      'operations',
      new TableIndex({ name: 'ix_operations_waiting', columnNames: ['queue_key', 'id'], where: "status = 'waiting_for_capacity'" }),
    );
    await runner.createTable(
      new Table({
        name: 'usage_events',
        columns: [
          { name: 'id', type: uuid, isPrimary: true },
          { name: 'vm_id', type: uuid, isNullable: false },
          { name: 'owner_id', type: uuid, isNullable: false },
          { name: 'kind', type: 'varchar', length: '32', isNullable: false },
          { name: 'gpu_count', type: 'integer', isNullable: false, default: 0 },
          { name: 'gpu_model', type: 'varchar', length: '64', isNullable: true },
          { name: 'at', type: ts, isNullable: false },
          { name: 'created_at', type: ts, isNullable: false },
          { name: 'updated_at', type: ts, isNullable: false },
        ],
        foreignKeys: [
          { name: 'fk_usage_events_vm_id', columnNames: ['vm_id'], referencedTableName: 'vms', referencedColumnNames: ['id'], onDelete: 'RESTRICT' },
          { name: 'fk_usage_events_owner_id', columnNames: ['owner_id'], referencedTableName: 'users', referencedColumnNames: ['id'], onDelete: 'RESTRICT' },
        ],
        indices: [
          new TableIndex({ name: 'ix_usage_events_owner_at', columnNames: ['owner_id', 'at'] }),
          new TableIndex({ name: 'ix_usage_events_vm_at', columnNames: ['vm_id', 'at'] }),
        ],
      }),
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.dropTable('usage_events');
    await runner.dropIndex('operations', 'ix_operations_waiting');
    await runner.dropIndex('operations', 'uq_operations_open_vm');
    await runner.createIndex(
      'operations',
      new TableIndex({ name: 'uq_operations_open_vm', columnNames: ['vm_id'], isUnique: true, where: "vm_id IS NOT NULL AND status IN ('pending', 'running')" }),
    );
    for (const column of ['queue_key', 'deadline_at', 'params']) await runner.query(`ALTER TABLE operations DROP COLUMN ${column}`);
    for (const column of ['disk_ref', 'power_state']) await runner.query(`ALTER TABLE vms DROP COLUMN ${column}`);
  }
}
