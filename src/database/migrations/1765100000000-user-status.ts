import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * users.token_version: bumped by a password change, a disable or a delete, so
 * every token issued before stops working at once. users.disabled_at and
 * users.deleted_at: users are disabled or deleted in place; their VMs and
 * operations keep pointing at them.
 */
export class UserStatus1765100000000 implements MigrationInterface {
  name = 'UserStatus1765100000000';

  async up(runner: QueryRunner): Promise<void> {
    const ts = runner.connection.driver.options.type === 'postgres' ? 'timestamptz' : 'datetime';
    await runner.query('ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0');
    await runner.query(`ALTER TABLE users ADD COLUMN disabled_at ${ts}`);
    await runner.query(`ALTER TABLE users ADD COLUMN deleted_at ${ts}`);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const column of ['deleted_at', 'disabled_at', 'token_version']) await runner.query(`ALTER TABLE users DROP COLUMN ${column}`);
  }
}
