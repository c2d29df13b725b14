import { MigrationInterface, QueryRunner, TableIndex } from 'typeorm';

const LIVE_NAME_INDEX = new TableIndex({ name: 'uq_hosts_live_name', columnNames: ['name'], isUnique: true, where: "state <> 'removed'" });

/**
 * Hosts can be renamed, relabelled and removed (issue 12):
 * - hosts.labels: an admin's labels for the host, JSON like vms.labels;
 * - a removed host keeps its row (VMs and GPU allocations still point at it),
 *   so its name must be free for the machine that replaces it: the unique
 *   name constraint becomes a unique index over the hosts not removed.
 *
 * SQLite cannot drop a table constraint, so there the table is rebuilt from
 * its own CREATE statement minus the constraint, with foreign keys off (see
 * rebuildHosts). That needs a transaction of its own, committed before
 * TypeORM records the migration, so each direction does all its work in it
 * and first checks whether it was done already (a crash in between).
 */
export class HostAdmin1765350000000 implements MigrationInterface {
  name = 'HostAdmin1765350000000';

  async up(runner: QueryRunner): Promise<void> {
    if (isPostgres(runner)) {
      await runner.query(`ALTER TABLE hosts ADD COLUMN labels text NOT NULL DEFAULT '[]'`);
      await runner.query('ALTER TABLE hosts DROP CONSTRAINT uq_hosts_name');
      await runner.createIndex('hosts', LIVE_NAME_INDEX);
      return;
    }
    if (await hasLabels(runner)) return;
    await withoutForeignKeys(runner, async () => {
      await runner.query(`ALTER TABLE hosts ADD COLUMN labels text NOT NULL DEFAULT '[]'`);
      await rebuildHosts(runner, (sql) => sql.replace(/,\s*CONSTRAINT "uq_hosts_name" UNIQUE \("name"\)/, ''));
      await runner.createIndex('hosts', LIVE_NAME_INDEX);
    });
  }

  async down(runner: QueryRunner): Promise<void> {
    if (isPostgres(runner)) {
      await runner.dropIndex('hosts', LIVE_NAME_INDEX.name!);
      await runner.query('ALTER TABLE hosts ADD CONSTRAINT uq_hosts_name UNIQUE (name)');
      await runner.query('ALTER TABLE hosts DROP COLUMN labels');
      return;
    }
    if (!(await hasLabels(runner))) return;
    await withoutForeignKeys(runner, async () => {
      await runner.dropIndex('hosts', LIVE_NAME_INDEX.name!);
      await runner.query('ALTER TABLE hosts DROP COLUMN labels');
      await rebuildHosts(runner, (sql) => sql.replace(/\)\s*$/, ', CONSTRAINT "uq_hosts_name" UNIQUE ("name"))'));
    });
  }
}

async function hasLabels(runner: QueryRunner): Promise<boolean> {
  return ((await runner.query(`PRAGMA table_info("hosts")`)) as { name: string }[]).some((c) => c.name === 'labels');
}

function isPostgres(runner: QueryRunner): boolean {
  return runner.connection.driver.options.type === 'postgres';
}

/**
 * Recreates hosts from its CREATE TABLE statement as `edit` changes it,
 * keeping every row and index: SQLite's documented way (create the new
 * table, copy, drop the old, rename the new). Dropping hosts would count as
 * deleting the parents of gpus and vms, so the caller turns foreign keys off
 * (withoutForeignKeys), and checks them before the commit.
 */
async function rebuildHosts(runner: QueryRunner, edit: (sql: string) => string): Promise<void> {
  const [table] = (await runner.query(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'hosts'`)) as { sql: string }[];
  const indexes = (await runner.query(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'hosts' AND sql IS NOT NULL`)) as { sql: string }[];
  const created = edit(table.sql);
  if (created === table.sql) throw new Error('hosts: the CREATE TABLE statement is not the one this migration knows');
  const columns = ((await runner.query(`PRAGMA table_info("hosts")`)) as { name: string }[]).map((c) => `"${c.name}"`).join(', ');
  await runner.query(created.replace(/^CREATE TABLE "?hosts"?/, 'CREATE TABLE "hosts_new"'));
  await runner.query(`INSERT INTO "hosts_new" (${columns}) SELECT ${columns} FROM "hosts"`);
  await runner.query('DROP TABLE "hosts"');
  await runner.query('ALTER TABLE "hosts_new" RENAME TO "hosts"');
  for (const index of indexes) await runner.query(index.sql);
}

/**
 * Runs `work` in a transaction of its own with SQLite's foreign keys off.
 * PRAGMA foreign_keys is ignored inside a transaction, and the migration
 * runs in one (TypeORM's), so that one is committed first and a new one is
 * begun after for the rest of the migration and TypeORM's bookkeeping.
 */
async function withoutForeignKeys(runner: QueryRunner, work: () => Promise<void>): Promise<void> {
  const outer = runner.isTransactionActive;
  if (outer) await runner.commitTransaction();
  await runner.query('PRAGMA foreign_keys = OFF');
  try {
    await runner.startTransaction();
    try {
      await work();
      const broken = (await runner.query('PRAGMA foreign_key_check')) as unknown[];
      if (broken.length > 0) throw new Error(`hosts rebuild would leave ${broken.length} broken foreign key(s)`);
      await runner.commitTransaction();
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    }
  } finally {
    await runner.query('PRAGMA foreign_keys = ON');
    if (outer) await runner.startTransaction();
  }
}
