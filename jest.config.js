/** Three tiers: small (src/**, libs/**), medium (test/medium: real databases), e2e (test/e2e: the real server as a process). */
const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: { '^@vmplane/sdk(|/.*)$': '<rootDir>/libs/sdk/src$1' },
};
module.exports = {
  // Per-project testTimeout is ignored by Jest; e2e tests start real servers and need the headroom.
  testTimeout: 60_000,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  projects: [
    { ...base, displayName: 'small', roots: ['<rootDir>/src', '<rootDir>/libs'], testRegex: '\\.spec\\.ts$' },
    { ...base, displayName: 'medium', roots: ['<rootDir>/test/medium'], testRegex: '\\.medium-spec\\.ts$' },
    { ...base, displayName: 'e2e', roots: ['<rootDir>/test/e2e'], testRegex: '\\.e2e-spec\\.ts$' },
  ],
};
