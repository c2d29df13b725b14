import { MigrationInterface, QueryRunner, Table, TableCheck, TableForeignKey, TableIndex } from 'typeorm';
import type { TableColumnOptions } from 'typeorm/schema-builder/options/TableColumnOptions';

/**
 * The initial schema, written with TypeORM's schema API so that the same
 * migration runs on SQLite and PostgreSQL. Timestamps are timestamptz on
 * PostgreSQL and ISO-like UTC text (TypeORM's datetime) on SQLite.
 */
export class InitialSchema1764190000000 implements MigrationInterface {
  name = 'InitialSchema1764190000000';

  async up(runner: QueryRunner): Promise<void> {
    const c = new Columns(runner.connection.driver.options.type === 'postgres');

    await runner.createTable(
      new Table({
        name: 'users',
        columns: [
          c.id(),
          c.str('username', 64),
          c.str('password_hash', 255),
          c.str('role', 16),
          c.int('quota_vcpus', true),
          c.int('quota_memory_mib', true),
          c.int('quota_gpus', true),
          c.int('quota_vms', true),
          c.counter('used_vcpus'),
          c.counter('used_memory_mib'),
          c.counter('used_gpus'),
          c.counter('used_vms'),
          ...c.timestamps(),
        ],
        uniques: [{ name: 'uq_users_username', columnNames: ['username'] }],
        checks: [
          new TableCheck({
            name: 'ck_users_usage',
            expression: 'used_vcpus >= 0 AND used_memory_mib >= 0 AND used_gpus >= 0 AND used_vms >= 0',
          }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'hosts',
        columns: [
          c.id(),
          c.str('name', 253),
          c.str('region', 64),
          c.int('cpu_cores'),
          c.int('memory_mib'),
          c.int('disk_gib'),
          c.counter('used_cpu_cores'),
          c.counter('used_memory_mib'),
          c.counter('used_disk_gib'),
          c.str('state', 16),
          ...c.timestamps(),
        ],
        uniques: [{ name: 'uq_hosts_name', columnNames: ['name'] }],
        checks: [
          new TableCheck({
            name: 'ck_hosts_capacity',
            expression:
              'used_cpu_cores >= 0 AND used_cpu_cores <= cpu_cores AND used_memory_mib >= 0 AND used_memory_mib <= memory_mib AND used_disk_gib >= 0 AND used_disk_gib <= disk_gib',
          }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'vms',
        columns: [
          c.id(),
          c.uuid('owner_id'),
          c.str('name', 63),
          c.int('cpu_cores'),
          c.int('memory'),
          c.int('disk_size'),
          c.str('public_ip', 45, true),
          c.text('labels'),
          c.str('status', 16),
          c.text('status_reason', true),
          c.uuid('host_id', true),
          c.counter('gpu_count'),
          c.str('gpu_model', 64, true),
          c.str('hypervisor_id', 64, true),
          c.ts('released_at', true),
          c.ts('deleted_at', true),
          ...c.timestamps(),
        ],
        foreignKeys: [fk('owner_id', 'users'), fk('host_id', 'hosts')],
        indices: [
          // Only the indexes a query uses: every index is written on each of a VM's four status changes.
          new TableIndex({ name: 'ix_vms_owner_id_id', columnNames: ['owner_id', 'id'] }),
          // A public IP belongs to at most one VM that still holds its resources.
          new TableIndex({
            name: 'uq_vms_live_public_ip',
            columnNames: ['public_ip'],
            isUnique: true,
            where: 'public_ip IS NOT NULL AND released_at IS NULL',
          }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'vm_labels',
        columns: [
          { ...c.uuid('vm_id'), isPrimary: true },
          { ...c.str('label', 63), isPrimary: true },
        ],
        foreignKeys: [fk('vm_id', 'vms')],
        indices: [new TableIndex({ name: 'ix_vm_labels_label_vm_id', columnNames: ['label', 'vm_id'] })],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'gpus',
        columns: [
          c.id(),
          c.uuid('host_id'),
          c.int('index'),
          c.str('model', 64),
          c.str('product_name', 128),
          c.int('memory_mib'),
          c.str('pci_address', 32),
          c.str('uuid', 64),
          { ...c.str('mig_mode', 16), default: "'disabled'" },
          c.uuid('vm_id', true),
          ...c.timestamps(),
        ],
        uniques: [
          { name: 'uq_gpus_uuid', columnNames: ['uuid'] },
          { name: 'uq_gpus_host_index', columnNames: ['host_id', 'index'] },
        ],
        foreignKeys: [fk('host_id', 'hosts'), fk('vm_id', 'vms')],
        indices: [
          new TableIndex({ name: 'ix_gpus_model_vm_id', columnNames: ['model', 'vm_id'] }),
          new TableIndex({ name: 'ix_gpus_vm_id', columnNames: ['vm_id'] }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'gpu_allocations',
        columns: [c.id(), c.uuid('gpu_id'), c.uuid('vm_id'), c.ts('released_at', true), ...c.timestamps()],
        foreignKeys: [fk('gpu_id', 'gpus'), fk('vm_id', 'vms')],
        indices: [
          new TableIndex({ name: 'ix_gpu_allocations_vm_id', columnNames: ['vm_id'] }),
          new TableIndex({
            name: 'uq_gpu_allocations_live_gpu',
            columnNames: ['gpu_id'],
            isUnique: true,
            where: 'released_at IS NULL',
          }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'operations',
        columns: [
          c.id(),
          c.uuid('vm_id', true),
          c.str('action', 32),
          c.str('status', 16),
          c.str('stage', 32),
          c.counter('attempts'),
          c.str('error_code', 64, true),
          c.text('error_message', true),
          c.uuid('user_id', true),
          c.str('hypervisor_vm_id', 64, true),
          c.str('request_id', 128, true),
          c.str('lease_owner', 64, true),
          c.ts('lease_expires_at', true),
          c.ts('started_at', true),
          c.ts('finished_at', true),
          ...c.timestamps(),
        ],
        foreignKeys: [fk('vm_id', 'vms'), fk('user_id', 'users')],
        indices: [
          new TableIndex({ name: 'ix_operations_vm_id_id', columnNames: ['vm_id', 'id'] }),
          // Workers look only for unfinished operations; finished ones (nearly all) leave this index.
          new TableIndex({
            name: 'ix_operations_open_lease',
            columnNames: ['status', 'lease_expires_at'],
            where: "status IN ('pending', 'running')",
          }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'idempotency_keys',
        columns: [
          c.id(),
          c.uuid('user_id'),
          c.str('key', 255),
          c.str('request_hash', 64),
          c.uuid('vm_id', true),
          c.uuid('operation_id', true),
          c.int('response_status', true),
          c.text('response_body', true),
          c.ts('expires_at'),
          ...c.timestamps(),
        ],
        uniques: [{ name: 'uq_idempotency_keys_user_key', columnNames: ['user_id', 'key'] }],
        foreignKeys: [fk('user_id', 'users')],
        indices: [
          new TableIndex({ name: 'ix_idempotency_keys_expires_at', columnNames: ['expires_at'] }),
          new TableIndex({ name: 'ix_idempotency_keys_operation_id', columnNames: ['operation_id'] }),
        ],
      }),
    );

    await runner.createTable(
      new Table({
        name: 'reconciliation_runs',
        columns: [
          c.id(),
          c.ts('started_at'),
          c.ts('finished_at', true),
          c.counter('hypervisor_vms'),
          c.counter('orphans_found'),
          c.counter('orphans_removed'),
          c.counter('stuck_operations_resumed'),
          c.counter('missing_vms_failed'),
          c.text('details'),
          c.text('error', true),
          ...c.timestamps(),
        ],
        indices: [new TableIndex({ name: 'ix_reconciliation_runs_started_at', columnNames: ['started_at'] })],
      }),
    );
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const table of [
      'reconciliation_runs',
      'idempotency_keys',
      'operations',
      'gpu_allocations',
      'gpus',
      'vm_labels',
      'vms',
      'hosts',
      'users',
    ]) {
      await runner.dropTable(table);
    }
  }
}

function fk(column: string, table: string): TableForeignKey {
  return new TableForeignKey({
    name: `fk_${table}_${column}`.slice(0, 63),
    columnNames: [column],
    referencedTableName: table,
    referencedColumnNames: ['id'],
    onDelete: 'RESTRICT',
  });
}

class Columns {
  constructor(private readonly pg: boolean) {}

  id(): TableColumnOptions {
    return { name: 'id', type: this.pg ? 'uuid' : 'varchar', length: this.pg ? undefined : '36', isPrimary: true };
  }

  uuid(name: string, nullable = false): TableColumnOptions {
    return { name, type: this.pg ? 'uuid' : 'varchar', length: this.pg ? undefined : '36', isNullable: nullable };
  }

  str(name: string, length: number, nullable = false): TableColumnOptions {
    return { name, type: 'varchar', length: String(length), isNullable: nullable };
  }

  text(name: string, nullable = false): TableColumnOptions {
    return { name, type: 'text', isNullable: nullable };
  }

  int(name: string, nullable = false): TableColumnOptions {
    return { name, type: 'integer', isNullable: nullable };
  }

  counter(name: string): TableColumnOptions {
    return { name, type: 'integer', isNullable: false, default: 0 };
  }

  ts(name: string, nullable = false): TableColumnOptions {
    return { name, type: this.pg ? 'timestamptz' : 'datetime', isNullable: nullable };
  }

  timestamps(): TableColumnOptions[] {
    return [this.ts('created_at'), this.ts('updated_at')];
  }
}
