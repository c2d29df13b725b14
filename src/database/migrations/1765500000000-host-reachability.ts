import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * hosts.unreachable_since: since when a host's hypervisor has not answered (a reconciliation pass that could not
 * list it, or a create that could not reach it); null while it answers. Placement leaves such a host out until a
 * pass finds it answering again.
 */
export class HostReachability1765500000000 implements MigrationInterface {
  name = 'HostReachability1765500000000';

  async up(runner: QueryRunner): Promise<void> {
    const ts = runner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';
    await runner.query(`ALTER TABLE hosts ADD COLUMN unreachable_since ${ts}`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE hosts DROP COLUMN unreachable_since');
  }
}
