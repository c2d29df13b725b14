/** `npm run test:crash`: the kill -9 recovery test, separate because it runs for a minute. */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: { '^@vmplane/sdk(|/.*)$': '<rootDir>/libs/sdk/src$1' },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  roots: ['<rootDir>/test/crash'],
  testRegex: '\\.crash-spec\\.ts$',
  testTimeout: 600_000,
};
