import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * usage_events.gpu_milli and gpu_profile: a GPU claim or release is metered in milli-GPUs, so a fractional VM
 * (a MIG profile or a vGPU size, gpu_count 0) is metered too; until now its claims were not recorded at all.
 * Earlier whole-GPU events get gpu_count × 1000.
 */
export class UsageGpuMilli1765600000000 implements MigrationInterface {
  name = 'UsageGpuMilli1765600000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('ALTER TABLE usage_events ADD COLUMN gpu_milli integer NOT NULL DEFAULT 0');
    await runner.query('ALTER TABLE usage_events ADD COLUMN gpu_profile varchar(32)');
    await runner.query(`UPDATE usage_events SET gpu_milli = gpu_count * 1000 WHERE kind IN ('gpu_claim', 'gpu_release')`);
  }

  async down(runner: QueryRunner): Promise<void> {
    // Fractional events have no whole-GPU form: they go with the columns that describe them.
    await runner.query(`DELETE FROM usage_events WHERE kind IN ('gpu_claim', 'gpu_release') AND gpu_count = 0`);
    await runner.query('ALTER TABLE usage_events DROP COLUMN gpu_profile');
    await runner.query('ALTER TABLE usage_events DROP COLUMN gpu_milli');
  }
}
