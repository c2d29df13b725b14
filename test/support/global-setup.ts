import { execSync } from 'node:child_process';
import { join } from 'node:path';
import { ADMIN_URL, postgresReachable } from './postgres';

/**
 * Runs once before every tier: decides whether the PostgreSQL suites run
 * (REQUIRE_POSTGRES=1 turns a missing server into a failure), and builds the
 * server the e2e tests start as a real process.
 */
export default async function globalSetup(): Promise<void> {
  // The tiers run, and start servers, in a time zone that is not UTC (+05:30, unless TZ is set): a timestamp
  // read as local time, or written without its offset, is then off by hours and fails a test.
  process.env.TZ ??= 'Asia/Kolkata';
  const problem = await postgresReachable();
  if (problem) {
    if (process.env.REQUIRE_POSTGRES === '1') {
      throw new Error(`REQUIRE_POSTGRES=1 but PostgreSQL is not reachable at ${ADMIN_URL}: ${problem}`);
    }
    process.env.VMPLANE_TEST_POSTGRES = '0';
    process.stdout.write(
      `\n*** PostgreSQL is not reachable at ${ADMIN_URL} (${problem}).\n*** SKIPPING the PostgreSQL suites; only SQLite is tested. Set REQUIRE_POSTGRES=1 to make this a failure.\n\n`,
    );
  } else {
    process.env.VMPLANE_TEST_POSTGRES = '1';
  }
  if (process.env.VMPLANE_TEST_SKIP_BUILD !== '1') {
    execSync('npx nest build', { cwd: join(__dirname, '..', '..'), stdio: 'inherit' });
  }
}
