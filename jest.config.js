/**
 * Four tiers: small (src/**, libs/**), medium (test/medium: real databases),
 * e2e (test/e2e: the real server as a process) — the e2e tier twice, on
 * SQLite and on PostgreSQL, when PostgreSQL is reachable — and libvirt
 * (test/libvirt: real VMs through libvirt).
 */
const { Client } = require('pg');

const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: { '^@vmplane/sdk(|/.*)$': '<rootDir>/libs/sdk/src$1' },
};

async function postgresReachable() {
  const client = new Client({
    connectionString: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    connectionTimeoutMillis: 3000,
  });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

module.exports = async () => ({
  // Per-project testTimeout is ignored by Jest; e2e tests start real servers and need the headroom.
  testTimeout: 60_000,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  projects: [
    { ...base, displayName: 'small', roots: ['<rootDir>/src', '<rootDir>/libs'], testRegex: '\\.spec\\.ts$' },
    { ...base, displayName: 'medium', roots: ['<rootDir>/test/medium'], testRegex: '\\.medium-spec\\.ts$' },
    { ...base, displayName: 'e2e', roots: ['<rootDir>/test/e2e'], testRegex: '\\.e2e-spec\\.ts$' },
    // Real VMs through libvirt on qemu:///system; skipped, visibly, where libvirt is not usable (REQUIRE_LIBVIRT=1 fails instead).
    { ...base, displayName: 'libvirt', roots: ['<rootDir>/test/libvirt'], testRegex: '\\.libvirt-spec\\.ts$' },
    ...((await postgresReachable())
      ? [
          {
            ...base,
            displayName: 'e2e-postgres',
            roots: ['<rootDir>/test/e2e'],
            testRegex: '\\.e2e-spec\\.ts$',
            setupFilesAfterEnv: ['<rootDir>/test/support/e2e-postgres.ts'],
          },
        ]
      : []),
  ],
});
